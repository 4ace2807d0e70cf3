# IPython kernel configuration for the kernels this project's .venv starts (the book build,
# nbgrader, the grader, JupyterLab). `make` copies it to .venv/etc/ipython/, a folder every
# IPython kernel of that environment reads (IPython's ENV_CONFIG_DIRS = sys.prefix/etc/ipython).
#
# ipykernel >= 7.3 logs "Kernel is running over TCP without encryption ..." at every start
# when its kernel manager gave it a TCP connection file without CurveZMQ keys. myst-nb
# (through jupyter-cache and nbclient) creates its KernelManager with an empty config, so
# neither `transport = "ipc"` nor `transport_encryption` can be set on the manager side;
# every kernel here is started on the same host over loopback by our own tools. This drops
# that one message from the kernel's log and leaves every other kernel warning alone.

_TCP_NOTICE = "Kernel is running over TCP without encryption"


def _not_the_tcp_notice(record):
    return _TCP_NOTICE not in record.getMessage()


c = get_config()  # noqa: F821 (IPython provides get_config in config files)
c.IPKernelApp.logging_config = {"loggers": {"IPKernelApp": {"filters": [_not_the_tcp_notice]}}}
