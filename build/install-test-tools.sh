#!/usr/bin/env bash
# Debian packages the test suite uses where they are present: python3-onnx (ONNX's own checker, run on the exported
# files). Installed when missing and this runs as root with apt-get (CI does); otherwise the test that needs it is
# skipped with a message saying so. Safe to run again.
if /usr/bin/python3 -c "import onnx" 2>/dev/null; then exit 0; fi
if command -v apt-get > /dev/null && [ "$(id -u)" = 0 ]; then
  if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-onnx) > /tmp/seqdsl-install-test-tools.log 2>&1; then
    echo "installed python3-onnx (ONNX checker for the export tests)"
  else
    echo "note: python3-onnx could not be installed (see /tmp/seqdsl-install-test-tools.log); the ONNX checker test will be skipped"
  fi
else
  echo "note: python3-onnx is not installed (apt-get install python3-onnx as root); the ONNX checker test will be skipped"
fi
exit 0
