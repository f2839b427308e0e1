//! The worker as a container's PID 1: `docker run`, ECS and AWS Batch start the image's
//! ENTRYPOINT as process 1 of its PID namespace. The kernel gives process 1 no default signal
//! actions, and every orphan of the namespace (a background process an exec program left behind)
//! becomes its child: left unreaped, those stay zombies until the container ends. So the
//! worker, when it finds itself process 1, forks first (before any thread exists): the parent
//! stays a tiny init that forwards signals to the worker and reaps every child, and ends with the
//! worker's exit status; the child goes on as the worker.

/// Signals the init passes on to the worker (what `docker stop`, `docker kill -s` and a terminal send).
const FORWARDED: [libc::c_int; 7] =
    [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGQUIT, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH];

/// When this process is PID 1, splits it into an init (this process, which never returns from
/// here) and the worker (the forked child, which returns with SIGTERM held like
/// [`crate::hold_sigterm`]). Elsewhere it does nothing. Called by [`crate::hold_sigterm`], before
/// the async runtime starts its threads; `BATCHFAN_NO_INIT=1` turns it off (an image that has its
/// own init, such as `docker run --init`).
pub(crate) fn become_init_if_pid_1() {
    // SAFETY: getpid cannot fail.
    if unsafe { libc::getpid() } != 1 || std::env::var_os("BATCHFAN_NO_INIT").is_some_and(|v| v == "1") {
        return;
    }
    // SAFETY: sigset_t values filled by sigemptyset/sigaddset; pthread_sigmask and fork on a
    // process with one thread (this runs before any thread starts); the init then uses only
    // async-signal-safe calls (sigtimedwait, waitpid, kill, _exit).
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigaddset(&mut set, libc::SIGCHLD);
        // Blocked before the fork, so no signal is lost between the fork and the init's wait.
        let mut old: libc::sigset_t = std::mem::zeroed();
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) != 0 {
            return;
        }
        match libc::fork() {
            -1 => {
                // No init: run as the worker, unsupervised.
                libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            }
            0 => {
                // The worker: the mask it had, plus SIGTERM held until its handler is installed.
                libc::sigaddset(&mut old, libc::SIGTERM);
                libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            }
            worker => supervise(worker, &set),
        }
    }
}

/// The init's loop: forward each signal to the worker, reap every child, end as the worker ended.
fn supervise(worker: libc::pid_t, set: &libc::sigset_t) -> ! {
    loop {
        // SAFETY: a zeroed siginfo_t for sigtimedwait to fill; a timeout reaps anyway.
        let sig = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let timeout = libc::timespec { tv_sec: 1, tv_nsec: 0 };
            libc::sigtimedwait(set, &mut info, &timeout)
        };
        if sig > 0 && sig != libc::SIGCHLD {
            // SAFETY: kill only sends a signal; a worker that is gone is ESRCH.
            unsafe { libc::kill(worker, sig) };
            continue;
        }
        loop {
            let mut status = 0;
            // SAFETY: waitpid with WNOHANG on any child of this process.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            if pid == worker {
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else if libc::WIFSIGNALED(status) {
                    128 + libc::WTERMSIG(status)
                } else {
                    1
                };
                // SAFETY: _exit ends the process at once; the container ends with it.
                unsafe { libc::_exit(code) };
            }
        }
    }
}

/// Unblocks every signal of the calling thread: between fork and exec, so a program starts with
/// the mask programs expect. Async-signal-safe.
pub(crate) fn clear_signal_mask() -> std::io::Result<()> {
    // SAFETY: sigemptyset and pthread_sigmask are async-signal-safe; the set is ours.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        if libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
