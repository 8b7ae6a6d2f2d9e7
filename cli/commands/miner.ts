// `tah miner`: join a swarm with this machine. Registers with the orchestrator under the wallet's
// hotkey, holds the stage it is given, and works until the run ends or Ctrl-C (which finishes or
// hands back the task in hand and tells the orchestrator, so nothing is left half-done).
import type { Command } from 'commander';
import { Option } from 'commander';
import { ADVERSARIES, type Adversary, parseFaults } from '../../worker/miner/faults.ts';
import { Miner, type MinerEvent } from '../../worker/miner/miner.ts';
import { makeOutput, onInterrupt } from '../output.ts';
import { type ParticipantFlags, joinOptions, participantOptions } from './participant.ts';
import type { Guard } from './wallet.ts';

interface MinerFlags extends ParticipantFlags {
  adversary?: Adversary;
}

export function registerMinerCommand(program: Command, guarded: Guard): void {
  participantOptions(program.command('miner').description('train one stage of the model with a swarm: register, take work, share gradients'))
    // For tests of the swarm's defences: cheat at every work item (worker/miner/faults.ts).
    .addOption(new Option('--adversary <mode>').choices(ADVERSARIES).hideHelp())
    .action(guarded(async (o: MinerFlags) => runMiner(o)));
}

async function runMiner(o: MinerFlags): Promise<void> {
  const out = makeOutput(o.json ?? false);
  const { wallet, options } = await joinOptions(o, out);

  const started = Date.now();
  let stage: number | null = null;
  let state = 'starting';
  let version = 0;
  let loss: number | null = null;
  let tokensPerS = 0;
  let items = 0;
  const show = (): void => {
    if (out.json || !process.stderr.isTTY) return;
    const l = loss === null ? '–' : loss.toFixed(3);
    process.stderr.write(`\r\x1b[2Kstage ${stage ?? '–'}  ${state.padEnd(8)} round ${version}  loss ${l}  ${tokensPerS.toFixed(0)} tok/s  ${items} items`);
  };
  const onEvent = (e: MinerEvent): void => {
    if (out.json) {
      const { type, ...fields } = e;
      out.event(type, fields);
    }
    switch (e.type) {
      case 'assigned':
        stage = e.stage;
        if (!out.json) out.note(`${wallet.address}: stage ${e.stage} of ${e.stage_count} (layers ${e.layers[0]}-${e.layers[1]}, ${e.params.toLocaleString()} parameters) in run ${e.run_id}`);
        break;
      case 'status':
        state = e.state;
        version = e.version;
        break;
      case 'applied':
        version = e.version;
        break;
      case 'loss':
        loss = e.loss;
        break;
      case 'throughput':
        tokensPerS = e.tokens_per_s;
        items = e.items;
        break;
      case 'error':
        if (!out.json) process.stderr.write(`\n${e.recoverable ? 'warning' : 'error'}: ${e.message}\n`);
        break;
      default:
    }
    show();
  };
  const miner = new Miner({
    ...options,
    onEvent,
    // Deliberate misbehaviour, for tests of the swarm's defences (worker/miner/faults.ts).
    faults: { ...parseFaults(process.env.TAH_FAULTS), ...(o.adversary ? { adversary: o.adversary } : {}) },
  });
  const interrupt = onInterrupt(out, 'stopping: finishing the task in hand (Ctrl-C again to quit at once)', () => miner.stop(), ['SIGINT', 'SIGTERM']);
  const result = await miner.run();
  interrupt.dispose();
  if (!out.json && process.stderr.isTTY) process.stderr.write('\n');
  const cpu = process.cpuUsage();
  out.summary({ ok: true, result, hotkey: wallet.address, stage, rounds: version, items, tokens_per_s: tokensPerS, wall_s: (Date.now() - started) / 1000, cpu_s: (cpu.user + cpu.system) / 1e6 }, `miner ${result}: stage ${stage ?? '–'}, ${version} rounds, ${items} items`);
}
