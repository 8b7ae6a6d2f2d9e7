// A tah process started by a host over an IPC channel (LocalSwarm: `tah swarm`, the tests) stops
// when that channel closes: the host is gone, however it ended (even SIGKILL), and nothing it
// started should go on without it. Stopping is the SIGTERM path each command already has (a miner
// finishes the task in hand and leaves); if that cannot finish, the process exits anyway.

/** How long a process whose host is gone may take to stop on its own. */
const GRACE_MS = 10_000;

export function stopWithHost(proc: NodeJS.Process = process): void {
  if (!proc.channel) return;
  // The channel must not keep this process alive by itself: it only listens for the host's end.
  proc.channel.unref();
  proc.once('disconnect', () => {
    setTimeout(() => proc.exit(1), GRACE_MS).unref();
    proc.kill(proc.pid, 'SIGTERM');
  });
}
