// The renderer's only way into the app: window.tah, the Bridge of the IPC contract. It exposes
// nothing of ipcRenderer itself (no arbitrary channels, no event objects); the main process checks
// every argument again, since a compromised renderer could call invoke directly.
import { type IpcRendererEvent, contextBridge, ipcRenderer } from 'electron';
import type { AppState, Bridge, BridgeResult } from './ipc-contract.ts';
import { CHANNELS, STATE_EVENT } from './ipc-names.ts';

const bridge: Bridge = {
  async call(channel, ...args) {
    if (!(CHANNELS as readonly string[]).includes(channel)) throw new Error(`unknown call ${JSON.stringify(channel)}`);
    const result = (await ipcRenderer.invoke(channel, ...args)) as BridgeResult<never>;
    if (!result.ok) throw new Error(result.error);
    return result.value;
  },
  onState(listener) {
    const forward = (_event: IpcRendererEvent, state: AppState) => listener(state);
    ipcRenderer.on(STATE_EVENT, forward);
    return () => void ipcRenderer.removeListener(STATE_EVENT, forward);
  },
};

contextBridge.exposeInMainWorld('tah', bridge);
