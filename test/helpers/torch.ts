// Runs the project's PyTorch reference (scripts/torch_llama.py) from tests, with the python that
// `tah` picks (cli/peer-python.ts). Where no python has torch, the tests that need it skip with
// a reason that names the install command.
import { INSTALL_HINT, peerPython, pythonImports, runTorchScript as runScript } from '../../cli/peer-python.ts';

export { TORCH_SCRIPT } from '../../cli/peer-python.ts';

const peer = peerPython();
/** The peer python (only meaningful where `torchSkip` is false). */
export const PYTHON = peer.ok ? peer.python : '';

/** false where torch can be imported, else why the test skips: for `test(name, { skip: torchSkip }, ...)`. */
export const torchSkip: string | false = peer.ok ? false : `PyTorch is not available: ${peer.reason}`;

/** Like `torchSkip`, for tests that load Hugging Face folders with transformers as well (checked when called). */
export function transformersSkip(): string | false {
  if (torchSkip) return torchSkip;
  return pythonImports(PYTHON, 'transformers') ? false : `transformers is not available: ${PYTHON} cannot import it (install it with torch: \`${INSTALL_HINT}\`)`;
}

/** Runs `torch_llama.py ...args` and parses the last JSON line it prints; rejects with its stderr. */
export function runTorchScript(args: string[], opts: { timeoutMs?: number } = {}): Promise<unknown> {
  return runScript(PYTHON, args, { timeoutMs: opts.timeoutMs ?? 300_000 });
}
