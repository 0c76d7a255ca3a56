"""A comparison as JUnit XML, so CI systems show each metric as a test case.

One testsuite per comparison; one testcase per metric compared (classname
``sandbench.<runtime>.<workload>``, name ``<metric>[<labels>]``): regressed is a failure,
inconclusive is skipped (with the reason), improved, unchanged and host drift (the host moved,
not the runtime) pass with the reason in their output. When the environments
differ in a way that blocks gating, one more testcase, ``sandbench.environment`` /
``same environment``, fails and lists the differences, so the refusal shows where the metrics
do.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sandbench.nightly.compare import Comparison, MetricComparison, Verdict


def _case(suite: ET.Element, metric: MetricComparison) -> None:
    runtime = metric.runtime.replace(" ", "")
    case = ET.SubElement(suite, "testcase", classname=f"sandbench.{runtime}.{metric.workload}",
                         name=metric.name, time="0")
    judgement = metric.judgement
    message = f"{metric.verdict}: {judgement.reason}"
    if metric.verdict == Verdict.REGRESSED:
        failure = ET.SubElement(case, "failure", message=message, type="regression")
        failure.text = (f"base median {metric.base.median:.6g} {metric.unit} (n={metric.base.n}), "
                        f"new median {metric.new.median:.6g} {metric.unit} (n={metric.new.n}); "
                        f"threshold {metric.threshold:.0%}, {metric.better} is better")
    elif metric.verdict == Verdict.INCONCLUSIVE:
        ET.SubElement(case, "skipped", message=message)
    else:
        out = ET.SubElement(case, "system-out")
        out.text = message


def to_junit(comparison: Comparison, *, gate_environment: bool) -> str:
    """The XML document. ``gate_environment``: whether gating differences count as a failure
    (they do unless the user said the change is expected)."""
    metrics = comparison.metrics
    blocked = gate_environment and bool(comparison.gating_differences)
    failures = comparison.count(Verdict.REGRESSED) + int(blocked)
    tests = len(metrics) + int(bool(comparison.environment))
    attrs = {"tests": str(tests), "failures": str(failures), "errors": "0",
             "skipped": str(comparison.count(Verdict.INCONCLUSIVE)), "time": "0"}
    root = ET.Element("testsuites", {"name": "sandbench compare", **attrs})
    suite = ET.SubElement(root, "testsuite", {
        "name": f"sandbench compare {comparison.base_id} -> {comparison.new_id}", **attrs})
    properties = ET.SubElement(suite, "properties")
    for name, value in (("base_run", comparison.base_id), ("new_run", comparison.new_id),
                        ("mode", comparison.mode), ("alpha", f"{comparison.alpha:g}"),
                        ("default_threshold", f"{comparison.thresholds.default:.0%}"),
                        ("min_change_ms", f"{comparison.thresholds.min_change_ms:g}"),
                        *((f"min_change.{name}", f"{value:g}") for name, value
                          in sorted(comparison.thresholds.min_change.items()))):
        ET.SubElement(properties, "property", name=name, value=value)
    if comparison.environment:
        case = ET.SubElement(suite, "testcase", classname="sandbench.environment",
                             name="same environment", time="0")
        listed = "\n".join(str(d) + ("" if d.gating else " (informational)")
                           for d in comparison.environment)
        if blocked:
            failure = ET.SubElement(case, "failure", type="environment",
                                    message="the environments differ; not gating across them")
            failure.text = listed
        else:
            ET.SubElement(case, "system-out").text = listed
    for metric in metrics:
        _case(suite, metric)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
