import { Command } from 'commander';

const program = new Command('tah')
  .description('Train at Home: pretrain a language model together, one home computer per model stage.')
  .showHelpAfterError();

program.command('train').description('train the whole model in this process').action(() => {
  throw new Error('not built yet');
});

await program.parseAsync(process.argv);
