// The `tah` command line: one entry with subcommands; each long-running one shows progress to
// people and, with --json, prints one JSON object per line ending with a "summary": true object.
import { Command, Option } from 'commander';
import { int, positive } from './args.ts';
import { exportHuggingFace } from '../worker/checkpoint/hf-export.ts';
import { DEVICES } from '../worker/engine/session.ts';
import { PRESET_LIST } from '../worker/model/config.ts';
import { benchEngineCommand } from './commands/bench.ts';
import { DEFAULT_GRID, benchCompressionCommand, parseCompressionConfig } from './commands/bench-compression.ts';
import { trainCommand } from './commands/train.ts';
import { stopWithHost } from './host.ts';
import { makeOutput, reportError } from './output.ts';

const deviceOption = () => new Option('--device <device>', 'execution provider').choices(DEVICES).default('auto');

/** Runs a command body, turning any failure into one error line and a non-zero exit. */
const guarded = <T extends { json?: boolean }>(body: (opts: T) => Promise<void>) => async (opts: T): Promise<void> => {
  try {
    await body(opts);
  } catch (e) {
    reportError(e, opts.json ?? false);
  }
};

const program = new Command('tah')
  .description('Train at Home: pretrain a language model together, one home computer per model stage.')
  .showHelpAfterError()
  // Usage errors found by commander take the same path as every other error (one line, and a
  // summary object with --json); commander still sets the exit code.
  .configureOutput({ outputError: (s) => reportError(s, process.argv.includes('--json')) });

program
  .command('train')
  .description('train the whole model in this process on the bundled corpus')
  .option('--preset <name|file>', `${PRESET_LIST}, or a JSON file with the same keys`, 'tiny')
  .option('--steps <n>', 'optimizer steps', int(1), 300)
  .option('--batch <n>', "sequences per step (default: the preset's batch_size)", int(1))
  .option('--lr <x>', 'peak learning rate (default: the preset recipe)', positive)
  .addOption(deviceOption())
  .option('--seed <n>', 'initialisation and data seed', int(0), 1)
  .option('--threads <n>', 'CPU threads (default: all cores)', int(1))
  .option('--eval-batches <n>', 'held-out batches for the loss', int(1), 32)
  .addOption(new Option('--tokenizer <kind>', 'byte-level, or BPE learned on the training split up to the preset\'s vocab_size').choices(['byte', 'bpe']).default('byte'))
  .option('--checkpoint <file>', 'where to write the checkpoint (default: runs/train-<preset>-<time>.safetensors)')
  .option('--json', 'one JSON object per line')
  .action(guarded(async (o) => trainCommand({ ...o, evalBatches: o.evalBatches }, makeOutput(o.json ?? false))));

const bench = program.command('bench').description('measure performance against a peer measured in the same run');
bench
  .command('engine')
  .description('tokens/s of full training steps, ours vs. PyTorch on the same preset')
  .option('--preset <name|file>', `${PRESET_LIST}, or a JSON file`, 'small')
  .option('--steps <n>', 'timed steps (after 2 warm-up steps)', int(1), 5)
  .addOption(deviceOption())
  .option('--threads <n>', 'CPU threads (default: all cores)', int(1))
  .option('--no-peer', 'skip the PyTorch measurement')
  .option('--profile', 'report time per operator type (ONNX Runtime profiler)')
  .option('--json', 'one JSON object per line')
  .action(guarded(async (o) => benchEngineCommand({ ...o, profile: o.profile ?? false }, makeOutput(o.json ?? false))));
bench
  .command('orchestrator')
  .description('signed lease/complete round trips per second and their latency, many simulated miners against a local orchestrator')
  .option('--miners <n>', 'simulated miners, each with its own hotkey', int(1), 1000)
  .option('--seconds <n>', 'measured seconds (after a short warm-up)', positive, 20)
  .option('--stages <n>', 'pipeline stages the miners are spread over', int(1), 4)
  .option('--concurrency <n>', 'miners with a request in flight at once (default 8)', int(1))
  .option('--samples-per-round <n>', 'samples in each round of the run (default: twice the miners, at least 1,000)', int(1))
  .option('--db <url>', 'the orchestrator\'s database (default: SQLite in a temporary folder)')
  .option('--profile', 'report where the orchestrator process spends its time (V8 CPU profile)')
  .option('--json', 'one JSON object per line')
  .action(guarded(async (o) => (await import('./commands/bench-orchestrator.ts')).benchOrchestratorCommand(o, makeOutput(o.json ?? false))));

bench
  .command('merge')
  .description("bytes each miner moves to merge a round (share, redundant reduce, apply) against its stage's size, for several replica counts")
  .option('--preset <name>', 'model preset (one stage holds all of it)', 'tiny')
  .option('--replicas <list>', 'replica counts to compare, comma-separated', (v) => v.split(',').map((x) => int(2)(x.trim())), [2, 3, 4])
  .option('--rounds <n>', 'rounds per run', int(1), 3)
  .option('--json', 'one JSON object per line')
  .action(guarded(async (o) => void (await (await import('./commands/bench-merge.ts')).benchMergeCommand(o, makeOutput(o.json ?? false)))));

bench
  .command('newcomer')
  .description('local-steps mode: a miner joining mid-run with the shared optimizer state vs. a fresh one (loss, rounds until it trains as well as the others)')
  .option('--preset <name>', 'model preset (one stage holds all of it)', 'tiny')
  .option('--replicas <n>', 'miners from the start', int(1), 2)
  .option('--rounds <n>', 'rounds per run', int(2), 60)
  .option('--join <round>', 'the newcomer joins once this many rounds are applied', int(1), 20)
  .option('--local-steps <n>', 'inner steps between merges', int(1), 10)
  .option('--json', 'one JSON object per line')
  .action(guarded(async (o) => void (await (await import('./commands/bench-newcomer.ts')).benchNewcomerCommand(o, makeOutput(o.json ?? false)))));

bench
  .command('compression')
  .description('held-out loss and bytes per token with compressed stage boundaries (bottlenecks, codecs) against the uncompressed model, same tokens')
  .option('--preset <name>', 'model preset', 'demo')
  .option('--steps <n>', 'training steps per configuration', int(1), 300)
  .option('--stages <n>', 'pipeline stages (bottlenecks sit at their boundaries)', int(2), 3)
  .option('--batch <n>', "sequences per step (default: the preset's batch_size)", int(1))
  .option('--rows-per-sample <n>', 'sequences in one swarm sample, for the bytes (the demo swarm sends 16)', int(1), 16)
  .option('--grid <list>', `configurations [bWIDTH:]CODEC[/BACKWARD], comma-separated (default ${DEFAULT_GRID.join(',')})`, (v) => v.split(',').map(parseCompressionConfig), DEFAULT_GRID.map(parseCompressionConfig))
  .option('--lr <x>', 'peak learning rate (default: the preset recipe)', positive)
  .option('--seed <n>', 'initialisation and data seed', int(0), 1)
  .option('--eval-batches <n>', 'held-out batches', int(1), 16)
  .option('--threads <n>', 'CPU threads (default: all cores)', int(1))
  .option('--plot <file>', 'write an SVG plot of held-out loss against compression')
  .option('--json', 'one JSON object per line')
  .action(guarded(async (o) => void (await benchCompressionCommand(o, makeOutput(o.json ?? false)))));

program
  .command('export')
  .description('write a whole-model checkpoint as a Hugging Face folder (config.json + model.safetensors)')
  .argument('<checkpoint>', 'a checkpoint written by tah train')
  .requiredOption('--hf <dir>', 'output folder')
  .option('--overwrite', 'replace a non-empty output folder')
  .option('--json', 'print the result as JSON')
  .action(async (checkpoint: string, o: { hf: string; overwrite?: boolean; json?: boolean }) =>
    guarded(async () => {
      await exportHuggingFace(checkpoint, o.hf, { overwrite: o.overwrite });
      makeOutput(o.json ?? false).summary({ ok: true, checkpoint, hf: o.hf }, `wrote ${o.hf}/config.json and ${o.hf}/model.safetensors`);
    })(o),
  );

(await import('./commands/wallet.ts')).registerWalletCommand(program, guarded);
(await import('./commands/orchestrator.ts')).registerOrchestratorCommand(program, guarded);
(await import('./commands/miner.ts')).registerMinerCommand(program, guarded);
(await import('./commands/validator.ts')).registerValidatorCommand(program, guarded);
(await import('./commands/app.ts')).registerAppCommand(program, guarded);
(await import('./commands/swarm.ts')).registerSwarmCommand(program, guarded);
(await import('./commands/checkpoint.ts')).registerCheckpointCommand(program, guarded);
(await import('./commands/setup.ts')).registerSetupCommand(program, guarded);
(await import('./commands/plan.ts')).registerPlanCommand(program, guarded);
stopWithHost();
await program.parseAsync(process.argv);
