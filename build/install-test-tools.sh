#!/usr/bin/env bash
# Debian packages the test suite uses where they are present: python3-onnx (ONNX's own checker, run on the exported
# files) and python3-torch (real PyTorch, run on the PyTorch exports and writing state dicts SeqDsl loads). Each is
# installed when missing and this runs as root with apt-get (CI does); otherwise the tests that need it are skipped
# with a message saying so. Safe to run again.
install() { # install PACKAGE MODULE WHAT
  if /usr/bin/python3 -c "import $2" 2>/dev/null; then return 0; fi
  if command -v apt-get > /dev/null && [ "$(id -u)" = 0 ]; then
    if (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1") >> /tmp/seqdsl-install-test-tools.log 2>&1; then
      echo "installed $1 ($3)"
    else
      echo "note: $1 could not be installed (see /tmp/seqdsl-install-test-tools.log); the tests that need it will be skipped"
    fi
  else
    echo "note: $1 is not installed (apt-get install $1 as root); the tests that need it will be skipped"
  fi
}
install python3-onnx onnx "ONNX checker for the export tests"
install python3-torch torch "PyTorch for the interop tests"
exit 0
