// One call from the renderer, whatever carried it (Electron's IPC or the browser host's
// WebSocket): checked against the contract, answered by the controller, and turned into a result
// that says what went wrong in the controller's own words. Never throws: a bad call must not
// crash the main process.
import { type BridgeResult, parseCall } from '../ipc-contract.ts';
import type { AppController } from './app.ts';

export async function dispatch(controller: AppController, channel: unknown, args: unknown, log?: (message: string) => void): Promise<BridgeResult<unknown>> {
  try {
    const call = parseCall(channel, args);
    return { ok: true, value: await controller.handle(call.channel, call.args as never) };
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    log?.(`call ${typeof channel === 'string' ? channel : '?'} failed: ${message}`);
    return { ok: false, error: message };
  }
}
