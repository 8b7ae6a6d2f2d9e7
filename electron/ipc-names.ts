// The bridge's names, apart from their schemas in ipc-contract.ts (which checks at compile time
// that both list the same calls): the sandboxed preload loads only this, not the schema library.
export const CHANNELS = [
  'state:get',
  'training:start',
  'training:stop',
  'training:pause',
  'training:resume',
  'wallet:create',
  'wallet:import',
  'wallet:set-payout',
  'wallet:reveal-mnemonic',
  'wallet:confirm-backup',
  'wallet:export',
  'settings:update',
  'hardware:check',
  'earnings:get',
  'network:get',
  'logs:recent',
  'diagnostics:export',
  'notice:dismiss',
  'updater:check',
  'updater:install',
] as const;
export type Channel = (typeof CHANNELS)[number];

/** The one event main sends: the whole state, after every change. */
export const STATE_EVENT = 'state:changed';
