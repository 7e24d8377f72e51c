"""The deployment files in config/ hold up against the real binary: the systemd
unit passes systemd-analyze, and every metric the example alerts use is one
that a running patchbay exports."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

CONFIG = os.path.join(harness.SOURCE_DIR, "config")


class DeployFiles(harness.TestCase):
    def test_systemd_unit_verifies(self):
        if shutil.which("systemd-analyze") is None:
            raise unittest.SkipTest("SKIPPED: systemd-analyze is not installed")
        with open(os.path.join(CONFIG, "patchbay.service")) as f:
            unit = f.read().replace("/usr/local/bin/patchbay", harness.BIN)
        d = tempfile.mkdtemp(prefix="pbunit-")
        try:
            path = os.path.join(d, "patchbay.service")
            with open(path, "w") as f:
                f.write(unit)
            r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True, timeout=60)
            # the unit's own lines only: the host's other units are not ours to judge
            ours = [l for l in (r.stdout + r.stderr).splitlines() if "patchbay.service" in l]
            self.assertEqual(ours, [])
        finally:
            shutil.rmtree(d, ignore_errors=True)
        self.assertIn("ExecStart=/usr/local/bin/patchbay run", open(os.path.join(CONFIG, "patchbay.service")).read())

    def test_alerts_use_metrics_patchbay_exports(self):
        try:
            import yaml
        except ImportError:
            raise unittest.SkipTest("SKIPPED: python3-yaml is not installed")
        with open(os.path.join(CONFIG, "prometheus-alerts.yml")) as f:
            rules = yaml.safe_load(f)["groups"][0]["rules"]
        used = set()
        for rule in rules:
            self.assertIn("alert", rule)
            self.assertIn("summary", rule["annotations"])
            used |= set(re.findall(r"\bpatchbay_[a-z_]+", rule["expr"]))
        self.assertTrue(used)
        pb = self.patchbay(command="run")
        c = pb.conn()

        def metrics():
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
            return text if "patchbay_queue_metrics_up 1" in text else None
        text = harness.wait_for(metrics, 20, interval=0.5, what="the queue section of /metrics")
        c.close()
        exported = set(re.findall(r"^(patchbay_[a-z_]+)", text, re.M))
        exported |= {re.sub(r"_(bucket|sum|count)$", "", m) for m in exported}
        self.assertEqual(sorted(used - exported), [])


if __name__ == "__main__":
    harness.main()
