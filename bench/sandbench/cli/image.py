"""`sandbench image build`: the workload image every sandbox runs."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from sandbench import image
from sandbench.cli.common import cache_option, console, show


@click.group(name="image")
def image_group() -> None:
    """The workload image every sandbox runs."""


@image_group.command(name="build")
@click.option("--force", is_flag=True, help="Rebuild even when the cached image is current.")
@click.option("--print-env", is_flag=True,
              help="Print only SANDBENCH_WORKLOAD_IMAGE=..., SANDBENCH_WORKLOAD_ARCHIVE=... and "
                   "SANDBENCH_GUEST_ARCHIVES=... (the KubeVirt guest's three, space-separated) "
                   "lines, for scripts that import the images into a cluster.")
@cache_option
def image_build(force: bool, print_env: bool, cache_dir: Path) -> None:
    """Build the workload image (rootfs + OCI archive), unless it is cached for these inputs."""
    with console.status("building the workload image..."):
        built = image.build_image(cache_dir, force=force, progress=lambda l: console.log(l))
    if print_env:
        click.echo(f"SANDBENCH_WORKLOAD_IMAGE={built.name}\nSANDBENCH_WORKLOAD_ARCHIVE={built.oci_archive}")
        if built.guest is not None:
            guest = built.guest
            archives = (guest.containerdisk_archive, guest.datadisk_archive,
                        guest.kernelboot_archive)
            click.echo("SANDBENCH_GUEST_ARCHIVES=" + shlex.quote(" ".join(map(str, archives))))
        return
    state = "built" if built.built else "cached"
    lines = [f"{state}: {built.name}", f"  rootfs: {built.rootfs}",
             f"  oci archive: {built.oci_archive}", f"  digest: {built.manifest_digest}"]
    if built.guest is not None:
        guest = built.guest
        lines += [f"  guest kernel: {guest.kernel} ({guest.kernel_package})",
                  f"  guest initrd: {guest.initrd}", f"  guest disk: {guest.rootfs_disk}",
                  *(f"  kubevirt {kind}: {name} ({path})" for kind, name, path in (
                      ("containerDisk", guest.names["containerdisk"], guest.containerdisk_archive),
                      ("data disk", guest.names["datadisk"], guest.datadisk_archive),
                      ("kernel boot", guest.names["kernelboot"], guest.kernelboot_archive)))]
    show.print("\n".join(lines), highlight=False, soft_wrap=True)
