// `tah validator`: check a swarm's miners. Registers under the wallet's hotkey, holds the stage the
// orchestrator gives it (the one with the fewest validators) in step with the run, re-runs the
// sampled work of that stage's miners and signs a verdict on each. Ctrl-C stops it cleanly.
import type { Command } from 'commander';
import type { MinerEvent } from '../../worker/miner/replica.ts';
import { Validator } from '../../validator/validator.ts';
import { makeOutput, onInterrupt } from '../output.ts';
import { type ParticipantFlags, joinOptions, participantOptions } from './participant.ts';
import type { Guard } from './wallet.ts';

export function registerValidatorCommand(program: Command, guarded: Guard): void {
  participantOptions(program.command('validator').description("check a swarm's miners: re-run sampled work of one stage and sign a verdict on each"))
    .action(guarded(async (o: ParticipantFlags) => runValidator(o)));
}

async function runValidator(o: ParticipantFlags): Promise<void> {
  const out = makeOutput(o.json ?? false);
  const { wallet, options } = await joinOptions(o, out);
  const started = Date.now();
  let stage: number | null = null;
  let version = 0;
  const verdicts = { pass: 0, fail: 0, abstain: 0 };
  const show = (): void => {
    if (out.json || !process.stderr.isTTY) return;
    process.stderr.write(`\r\x1b[2Kvalidator: stage ${stage ?? '–'}  round ${version}  ${verdicts.pass} passed  ${verdicts.fail} failed`);
  };
  const onEvent = (e: MinerEvent): void => {
    if (out.json) {
      const { type, ...fields } = e;
      out.event(type, fields);
    }
    if (e.type === 'assigned') {
      stage = e.stage;
      if (!out.json) out.note(`${wallet.address}: validating stage ${e.stage} of ${e.stage_count} (layers ${e.layers[0]}-${e.layers[1]}) in run ${e.run_id}`);
    } else if (e.type === 'applied' || e.type === 'status') version = e.version;
    else if (e.type === 'verdict') {
      verdicts[e.outcome]++;
      if (!out.json && e.outcome === 'fail') process.stderr.write(`\nround ${e.round}: ${e.miner}'s ${e.target} failed its check (relative error ${e.error.toExponential(2)})\n`);
    } else if (e.type === 'error' && !out.json) process.stderr.write(`\n${e.recoverable ? 'warning' : 'error'}: ${e.message}\n`);
    show();
  };
  const validator = new Validator({
    ...options,
    onEvent,
  });
  const interrupt = onInterrupt(out, 'stopping: finishing the check in hand (Ctrl-C again to quit at once)', () => validator.stop(), ['SIGINT', 'SIGTERM']);
  const result = await validator.run();
  interrupt.dispose();
  if (!out.json && process.stderr.isTTY) process.stderr.write('\n');
  out.summary({ ok: true, result, hotkey: wallet.address, stage, rounds: version, ...verdicts, wall_s: (Date.now() - started) / 1000 }, `validator ${result}: stage ${stage ?? '–'}, ${version} rounds, ${verdicts.pass} checks passed, ${verdicts.fail} failed`);
}
