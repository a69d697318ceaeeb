/**
 * A supervised child exits when its supervisor disappears (e.g. killed with SIGKILL), so no worker
 * or API process outlives the tree it belongs to.
 */
export function exitWhenSupervisorDies(onGone: () => void): void {
  const supervisor = Number(process.env.PLATFORM_SUPERVISOR_PID);
  if (!Number.isInteger(supervisor) || supervisor <= 0) return;
  const timer = setInterval(() => {
    try {
      process.kill(supervisor, 0);
    } catch {
      clearInterval(timer);
      onGone();
    }
  }, 2000);
  timer.unref();
}
