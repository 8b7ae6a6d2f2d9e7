// The orchestrator's database, as TypeScript types for kysely. Every table is created by
// migrations.ts; the same types hold on SQLite and PostgreSQL:
//  - ids are text;
//  - times are milliseconds since the Unix epoch, stored as bigint and read back as JS numbers
//    (open.ts makes PostgreSQL's int8 come back as numbers, refusing values past 2^53);
//  - booleans are integers 0/1 (SQLite has no boolean type, and one representation for both
//    dialects keeps the code that reads them single);
//  - JSON is stored as text and parsed by the caller.
import type { ColumnType, Generated, Insertable, Selectable, Updateable } from 'kysely';
import type { Direction, FLAG_KINDS, Role } from '../../orchestrator-client/protocol.ts';

export type FlagKind = (typeof FLAG_KINDS)[number];

/** A column with a database default: optional on insert, always present when read. */
type WithDefault<T> = ColumnType<T, T | undefined, T>;

/** 'excluded': caught cheating (a flag); it may not take part in the run again. */
export type ParticipantStatus = 'active' | 'gone' | 'excluded';
/** 'lost': done, but its result died with the miner that held it (a redo item replaces it). */
export type WorkItemStatus = 'pending' | 'leased' | 'done' | 'lost';
/** Work items: a sample's forward and backward passes, a redo, or a round's share and reduce steps. */
export type ItemKind = Direction | 'share' | 'reduce' | 'local';
export type RoundStatus = 'compute' | 'reduced';
export type StagePhase = 'compute' | 'local' | 'share' | 'reduce' | 'done';

export interface RunsTable {
  id: string;
  /** The run's RunSpec (protocol.ts) as JSON. */
  spec_json: string;
  created_at: number;
  /** 'active' unless the operator stopped the run. */
  status: WithDefault<string>;
}

export interface ParticipantsTable {
  /** The participant's SS58 hotkey; one registration per hotkey. */
  hotkey: string;
  role: Role;
  run_id: string;
  /** The stage a miner holds; null for validators and operators. */
  stage: number | null;
  /** The Hardware (protocol.ts) it reported, as JSON. */
  hardware_json: string;
  registered_at: number;
  last_seen: number;
  status: ParticipantStatus;
  /** Rounds whose step the miner reported applied to its copy of the stage. */
  version: WithDefault<number>;
  /** 1: its state diverged (or the run was rolled back): its next task loads a stored state. */
  resync: WithDefault<number>;
}

export interface SamplesTable {
  run_id: string;
  id: string;
  round: number;
  seed: number;
  shard: number;
  idx: number;
  /** The loss the last stage reported; null until then. */
  loss: number | null;
  /** 1 once the sample's backward pass reached stage 0, else 0. */
  done: WithDefault<number>;
  created_at: number;
}

export interface WorkItemsTable {
  id: string;
  run_id: string;
  sample_id: string;
  stage: number;
  direction: ItemKind;
  status: WorkItemStatus;
  round: WithDefault<number>;
  /** Share and reduce items: their slices and inputs, as JSON. */
  detail_json: WithDefault<string>;
  /** A reduce item's result: the sum of squares of its reduced slice. */
  sumsq: number | null;
  /** A miner that may not take the item (its earlier upload for it was refused). */
  not_hotkey: string | null;
  /** Blob key of the input tensor; null where the input is the sample itself (stage 0 forward). */
  input_key: string | null;
  /** Blob key the result goes to. */
  output_key: string;
  /** The only miner that may take the item: a backward item goes to the miner that did the forward. */
  required_hotkey: string | null;
  /** The current lease (unique); null while pending. */
  lease_id: string | null;
  leased_to: string | null;
  lease_expires: number | null;
  /** How many times the item was leased. */
  attempts: WithDefault<number>;
  completed_by: string | null;
  completed_at: number | null;
  output_bytes: number | null;
  created_at: number;
}

export interface EventsTable {
  id: Generated<number>;
  at: number;
  kind: string;
  hotkey: string | null;
  run_id: string | null;
  /** Anything else worth keeping, as a JSON object. */
  details_json: WithDefault<string>;
}

export interface FlagsTable {
  id: Generated<number>;
  run_id: string;
  hotkey: string;
  kind: FlagKind;
  round: number | null;
  stage: number | null;
  at: number;
  /** Blob keys (kept), digests and the winning result, as a JSON object. */
  evidence_json: WithDefault<string>;
}

export interface RoundsTable {
  run_id: string;
  round: number;
  status: RoundStatus;
  created_at: number;
  reduced_at: number | null;
  /** Squared norm of the round's whole-model gradient, and the clip and learning rate it gives. */
  grad_sumsq: number | null;
  clip: number | null;
  lr: number | null;
  /** Bumped when the round starts again from scratch (a cheat's outputs reached others' sums). */
  generation: WithDefault<number>;
}

export interface StageRoundsTable {
  run_id: string;
  round: number;
  stage: number;
  /** Bumped when a replica's gradient sum is lost mid-share and the share starts again. */
  attempt: WithDefault<number>;
  phase: StagePhase;
  /** The replicas whose sums are reduced, in reduction order (JSON array of hotkeys). */
  contributors_json: WithDefault<string>;
  sumsq: number | null;
}

export interface SnapshotsTable {
  run_id: string;
  stage: number;
  /** The state is the stage after this many rounds. */
  rounds: number;
  key: string;
  bytes: number | null;
  status: 'assigned' | 'done';
  holder: string | null;
  assigned_at: number;
  /** stateDigest of the stored state, as its uploader reported it. */
  hash: string | null;
  /** The holder's write grant: its upload URL works only while this assignment stands. */
  lease_id: WithDefault<string | null>;
}

export interface VersionsTable {
  run_id: string;
  stage: number;
  rounds: number;
  /** Each replica's reported stateDigest after applying round rounds − 1: {hotkey: hash}. */
  reports_json: WithDefault<string>;
  created_at: number;
}

/** A sampled check of a miner's work: pending until a validator re-runs it and signs a verdict. */
export interface ChecksTable {
  id: Generated<number>;
  run_id: string;
  round: number;
  stage: number;
  miner: string;
  target: 'item' | 'share';
  /** The work item (or share item) checked. */
  subject: string;
  /** The items as the miner did them and, for a share, its slices (keys, not URLs), as JSON. */
  detail_json: string;
  /** Blob keys kept alive for the check (deleted once it is decided, unless it failed: evidence). */
  keys_json: WithDefault<string>;
  status: 'pending' | 'leased' | 'passed' | 'failed' | 'expired';
  lease_id: string | null;
  leased_to: string | null;
  lease_expires: number | null;
  created_at: number;
  decided_at: number | null;
  validator: string | null;
  error: number | null;
  loss_diff: number | null;
  reason: string | null;
  /** The validator's sr25519 signature of verdictMessage() (protocol.ts). */
  signature: string | null;
}

/** A closed reward epoch (append-only). */
export interface EpochsTable {
  run_id: string;
  epoch: number;
  from_round: number;
  to_round: number;
  closed_at: number;
  total_score: number;
  miners: number;
  excluded_json: string;
}

/** One miner's line of a closed epoch (append-only). */
export interface RewardsTable {
  run_id: string;
  epoch: number;
  hotkey: string;
  work: number;
  passed: number;
  failed: number;
  liveness: number;
  score: number;
  share: number;
  reason: string | null;
}

/** The nonce of an accepted signed request, remembered until its timestamp leaves the window. */
export interface RequestNoncesTable {
  hotkey: string;
  /** Lower-case hex. */
  nonce: string;
  expires_at: number;
}

/** An accepted upload: the SHA-256 its readers check, and who wrote it. */
export interface BlobsTable {
  key: string;
  run_id: string;
  sha256: string;
  bytes: number;
  producer: string;
  accepted_at: number;
}

export interface KvTable {
  key: string;
  value: string;
}

export interface Database {
  runs: RunsTable;
  participants: ParticipantsTable;
  samples: SamplesTable;
  work_items: WorkItemsTable;
  events: EventsTable;
  kv: KvTable;
  rounds: RoundsTable;
  stage_rounds: StageRoundsTable;
  snapshots: SnapshotsTable;
  flags: FlagsTable;
  versions: VersionsTable;
  checks: ChecksTable;
  epochs: EpochsTable;
  rewards: RewardsTable;
  request_nonces: RequestNoncesTable;
  blobs: BlobsTable;
}

export type RunRow = Selectable<RunsTable>;
export type NewRun = Insertable<RunsTable>;
export type RunUpdate = Updateable<RunsTable>;

export type ParticipantRow = Selectable<ParticipantsTable>;
export type NewParticipant = Insertable<ParticipantsTable>;
export type ParticipantUpdate = Updateable<ParticipantsTable>;

export type SampleRow = Selectable<SamplesTable>;
export type NewSample = Insertable<SamplesTable>;
export type SampleUpdate = Updateable<SamplesTable>;

export type WorkItemRow = Selectable<WorkItemsTable>;
export type NewWorkItem = Insertable<WorkItemsTable>;
export type WorkItemUpdate = Updateable<WorkItemsTable>;

export type EventRow = Selectable<EventsTable>;
export type NewEvent = Insertable<EventsTable>;

export type KvRow = Selectable<KvTable>;
