"""Peak memory of the current process, for the runners' no-large-allocation checks."""
import resource


def peak_rss_mib() -> int:
    """This process's own peak resident size (VmHWM), in MiB.

    ``ru_maxrss`` is not used: Linux carries it over from the parent across fork + exec, so a
    runner started from a large pytest process would report the test runner's size.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) >> 10
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
