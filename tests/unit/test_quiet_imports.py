"""Importing the transports prints nothing: a library's deprecation warning is not the user's to read."""

import subprocess
import sys


def test_the_ssh_transports_import_without_a_word_on_stderr():
    code = "import pushorch.transport.asyncssh, pushorch.transport.paramiko, pushorch.transport.hostkeys"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
