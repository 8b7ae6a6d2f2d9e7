// Settings: every setting a user should change (network, computer, power, start-up), saved in one
// settings:update whose refusals show next to their fields; the wallet (address, recovery words,
// export, payout address, key protection) and the hardware check.
import { type FormEvent, type ReactNode, useState } from 'react';
import type { Settings as SettingsValues, SettingsPatch } from '../../../electron/ipc-contract.ts';
import { ErrorText } from '../components/ErrorText.tsx';
import { HardwareView } from '../components/Hardware.tsx';
import { Screen } from '../components/Screen.tsx';
import { MnemonicWords, PlaintextConsent, WalletSetup } from '../components/Wallet.tsx';
import { type FieldErrors, splitSettingsError } from '../settingsErrors.ts';
import { actions, clearError, useApp } from '../stores/app.ts';

/** The fields of the form: what a user should change (allowPlaintextKey and onboarded are not). */
const EDITABLE = ['orchestratorUrl', 'runId', 'threads', 'useGpu', 'runOnBattery', 'minBatteryPercent', 'onlyWhenIdle', 'idleMinutes', 'startAtLogin', 'startMinimised', 'autoStart'] as const;
type Editable = (typeof EDITABLE)[number];

/** The form's values as typed: numbers and optional texts stay strings until saved. */
interface Draft {
  orchestratorUrl: string;
  runId: string;
  threads: string;
  useGpu: boolean;
  runOnBattery: boolean;
  minBatteryPercent: string;
  onlyWhenIdle: boolean;
  idleMinutes: string;
  startAtLogin: boolean;
  startMinimised: boolean;
  autoStart: boolean;
}

function draftOf(s: SettingsValues): Draft {
  return {
    orchestratorUrl: s.orchestratorUrl,
    runId: s.runId ?? '',
    threads: s.threads === null ? '' : String(s.threads),
    useGpu: s.useGpu,
    runOnBattery: s.runOnBattery,
    minBatteryPercent: String(s.minBatteryPercent),
    onlyWhenIdle: s.onlyWhenIdle,
    idleMinutes: String(s.idleMinutes),
    startAtLogin: s.startAtLogin,
    startMinimised: s.startMinimised,
    autoStart: s.autoStart,
  };
}

function toNumber(text: string): number | null {
  const t = text.trim();
  return t === '' || !/^-?\d+(\.\d+)?$/.test(t) ? null : Number(t);
}

/** The patch of what changed, or the fields the form itself can tell are not numbers. */
function patchOf(d: Draft, s: SettingsValues): { patch: SettingsPatch; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const next: Partial<Record<Editable, unknown>> = {
    orchestratorUrl: d.orchestratorUrl.trim(),
    runId: d.runId.trim() === '' ? null : d.runId.trim(),
    useGpu: d.useGpu,
    runOnBattery: d.runOnBattery,
    onlyWhenIdle: d.onlyWhenIdle,
    startAtLogin: d.startAtLogin,
    startMinimised: d.startMinimised,
    autoStart: d.autoStart,
  };
  if (d.threads.trim() === '') next.threads = null;
  else if (toNumber(d.threads) === null) errors.threads = 'a whole number, or empty for all cores but one';
  else next.threads = toNumber(d.threads);
  for (const k of ['minBatteryPercent', 'idleMinutes'] as const) {
    const n = toNumber(d[k]);
    if (n === null) errors[k] = 'a whole number';
    else next[k] = n;
  }
  const patch: Record<string, unknown> = {};
  for (const k of EDITABLE) if (k in next && next[k] !== s[k]) patch[k] = next[k];
  return { patch: patch as SettingsPatch, errors };
}

function Field({ id, label, help, error, children }: { id: string; label: string; help?: ReactNode; error?: string; children: ReactNode }) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children}
      {help ? (
        <p className="muted small" id={`${id}-help`}>
          {help}
        </p>
      ) : null}
      <ErrorText message={error} testid={`${id}-error`} />
    </div>
  );
}

function Check({ id, label, checked, onChange, error }: { id: string; label: string; checked: boolean; onChange: (v: boolean) => void; error?: string }) {
  return (
    <div className="field">
      <label className="check" htmlFor={id}>
        <input id={id} type="checkbox" data-testid={id} checked={checked} onChange={(e) => onChange(e.target.checked)} />
        <span>{label}</span>
      </label>
      <ErrorText message={error} testid={`${id}-error`} />
    </div>
  );
}

function SettingsForm({ settings }: { settings: SettingsValues }) {
  const [draft, setDraft] = useState<Draft>(() => draftOf(settings));
  const [local, setLocal] = useState<FieldErrors>({});
  const [saved, setSaved] = useState(false);
  const busy = useApp((s) => !!s.busy.settings);
  const error = useApp((s) => s.errors.settings);
  const remote = splitSettingsError(error, EDITABLE);
  const errs = { ...remote.fields, ...local };

  const set = <K extends keyof Draft>(k: K, v: Draft[K]) => {
    setDraft((d) => ({ ...d, [k]: v }));
    setSaved(false);
    setLocal((l) => {
      const { [k]: _, ...rest } = l as Record<string, string>;
      return rest;
    });
  };
  const text = (k: Editable, type: 'text' | 'url' | 'number', extra: Record<string, unknown> = {}) => (
    <input
      id={`settings-${k}`}
      data-testid={`settings-${k}`}
      type={type}
      value={draft[k] as string}
      spellCheck={false}
      aria-invalid={errs[k] ? true : undefined}
      aria-describedby={`settings-${k}-help`}
      onChange={(e) => set(k, e.target.value as never)}
      {...extra}
    />
  );

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setSaved(false);
    clearError('settings');
    const { patch, errors } = patchOf(draft, settings);
    setLocal(errors);
    if (Object.keys(errors).length > 0) return;
    void actions.updateSettings(patch).then((r) => {
      if (!r.ok) return;
      setDraft(draftOf(r.value));
      setSaved(true);
    });
  };

  return (
    <form className="card settings-form" noValidate onSubmit={submit} data-testid="settings-form">
      <h2>Training</h2>
      <fieldset>
        <legend>Network</legend>
        <Field id="settings-orchestratorUrl" label="Network address (orchestrator)" help="The service that hands out the work, e.g. https://orchestrator.example.org" error={errs.orchestratorUrl}>
          {text('orchestratorUrl', 'url')}
        </Field>
        <Field id="settings-runId" label="Training run" help="Leave empty to join the newest run." error={errs.runId}>
          {text('runId', 'text', { placeholder: 'newest run' })}
        </Field>
      </fieldset>
      <fieldset>
        <legend>This computer</legend>
        <Field id="settings-threads" label="Processor threads to use" help="Leave empty to use all cores but one, so the computer stays usable." error={errs.threads}>
          {text('threads', 'number', { min: 1, max: 512, step: 1, inputMode: 'numeric', placeholder: 'automatic' })}
        </Field>
        <Check id="settings-useGpu" label="Use the graphics card when there is a suitable one" checked={draft.useGpu} onChange={(v) => set('useGpu', v)} error={errs.useGpu} />
      </fieldset>
      <fieldset>
        <legend>Power</legend>
        <Check id="settings-runOnBattery" label="Also train on battery power" checked={draft.runOnBattery} onChange={(v) => set('runOnBattery', v)} error={errs.runOnBattery} />
        <Field id="settings-minBatteryPercent" label="On battery, pause below this charge (%)" help="Only used when training on battery is on." error={errs.minBatteryPercent}>
          {text('minBatteryPercent', 'number', { min: 0, max: 100, step: 1, inputMode: 'numeric' })}
        </Field>
        <Check id="settings-onlyWhenIdle" label="Train only while nobody uses the computer" checked={draft.onlyWhenIdle} onChange={(v) => set('onlyWhenIdle', v)} error={errs.onlyWhenIdle} />
        <Field id="settings-idleMinutes" label="Minutes without keyboard or mouse before it counts as unused" help="Only used with the option above." error={errs.idleMinutes}>
          {text('idleMinutes', 'number', { min: 1, max: 720, step: 1, inputMode: 'numeric' })}
        </Field>
      </fieldset>
      <fieldset>
        <legend>Start-up</legend>
        <Check id="settings-startAtLogin" label="Start the app when I log in" checked={draft.startAtLogin} onChange={(v) => set('startAtLogin', v)} error={errs.startAtLogin} />
        <Check id="settings-startMinimised" label="Start minimised (in the tray)" checked={draft.startMinimised} onChange={(v) => set('startMinimised', v)} error={errs.startMinimised} />
        <Check id="settings-autoStart" label="Start training as soon as the app starts" checked={draft.autoStart} onChange={(v) => set('autoStart', v)} error={errs.autoStart} />
      </fieldset>
      <div className="actions">
        <button type="submit" className="primary" data-testid="settings-save" disabled={busy}>
          Save settings
        </button>
        <button type="button" className="ghost" data-testid="settings-reset" onClick={() => {
            setDraft(draftOf(settings));
            setLocal({});
            clearError('settings');
            setSaved(false);
          }}>
          Undo changes
        </button>
        {saved ? (
          <span className="success-text" role="status" data-testid="settings-saved">
            Saved.
          </span>
        ) : null}
      </div>
      <ErrorText message={Object.keys(local).length ? 'Some values need fixing (see above).' : remote.rest} testid="settings-error" />
    </form>
  );
}

function WalletSection() {
  const wallet = useApp((s) => s.state?.wallet ?? null);
  const walletProblem = useApp((s) => s.state?.walletProblem ?? null);
  const errors = useApp((s) => s.errors);
  const busy = useApp((s) => s.busy);
  const [words, setWords] = useState<string | null>(null);
  const [exported, setExported] = useState<string | null>(null);
  const [payout, setPayout] = useState(wallet?.payoutAddress ?? '');
  const [payoutSaved, setPayoutSaved] = useState(false);

  return (
    <section className="card" aria-labelledby="wallet-title" data-testid="wallet-section">
      <h2 id="wallet-title">Wallet</h2>
      {walletProblem ? (
        <p className="warn-box" data-testid="wallet-problem">
          {walletProblem}
        </p>
      ) : null}
      {!wallet || !wallet.backedUp ? <WalletSetup onDone={() => undefined} later={false} /> : null}
      {wallet ? (
        <>
          <PlaintextConsent />
          <dl className="kv">
            <dt>This computer's address (hotkey)</dt>
            <dd className="mono" data-testid="wallet-address">
              {wallet.address}
            </dd>
            <dt>Key kept</dt>
            <dd data-testid="wallet-protection">{wallet.protection === 'os' ? "encrypted by the system's keychain" : 'unencrypted, in a file only your user account can read'}</dd>
            <dt>Recovery words</dt>
            <dd>{wallet.backedUp ? 'you confirmed you wrote them down' : 'not yet confirmed as written down'}</dd>
          </dl>
          <div className="actions">
            {wallet.backedUp ? (
              <button
                type="button"
                data-testid="reveal-mnemonic"
                aria-expanded={words !== null}
                disabled={!!busy.reveal}
                onClick={() => {
                  if (words !== null) setWords(null);
                  else void actions.revealMnemonic().then((r) => r.ok && setWords(r.value.mnemonic));
                }}
              >
                {words !== null ? 'Hide the recovery words' : 'Show the recovery words'}
              </button>
            ) : null}
            <button
              type="button"
              data-testid="wallet-export"
              disabled={!!busy.walletExport}
              onClick={() => {
                setExported(null);
                void actions.exportWallet().then((r) => r.ok && setExported(r.value ? `Saved to ${r.value.path}` : 'Export cancelled.'));
              }}
            >
              Export the key file…
            </button>
          </div>
          <ErrorText message={errors.reveal} testid="reveal-error" />
          {words !== null && wallet.backedUp ? (
            <div className="warn-box">
              <p>Anyone who sees these words can take your earnings. Hide them when you are done.</p>
              <MnemonicWords mnemonic={words} />
            </div>
          ) : null}
          {exported ? (
            <p className="success-text" role="status" data-testid="wallet-export-result">
              {exported}
            </p>
          ) : null}
          <ErrorText message={errors.walletExport} testid="wallet-export-error" />
          <form
            className="payout"
            onSubmit={(e) => {
              e.preventDefault();
              setPayoutSaved(false);
              void actions.setPayout(payout.trim() === '' ? null : payout.trim()).then((r) => r.ok && setPayoutSaved(true));
            }}
          >
            <Field id="payout-input" label="Payout address (your coldkey; empty: paid to this computer's key)" error={undefined}>
              <input
                id="payout-input"
                data-testid="payout-input"
                value={payout}
                spellCheck={false}
                autoComplete="off"
                aria-invalid={errors.payout ? true : undefined}
                onChange={(e) => {
                  setPayout(e.target.value);
                  setPayoutSaved(false);
                  clearError('payout');
                }}
              />
            </Field>
            <div className="actions">
              <button type="submit" data-testid="payout-save" disabled={!!busy.payout}>
                Save payout address
              </button>
              {payoutSaved ? (
                <span className="success-text" role="status">
                  Saved.
                </span>
              ) : null}
            </div>
            <ErrorText message={errors.payout} testid="payout-error" />
            <p className="muted small" data-testid="payout-current">
              Rewards go to: <span className="mono">{wallet.payoutAddress ?? wallet.address}</span>
            </p>
          </form>
        </>
      ) : null}
    </section>
  );
}

function HardwareSection() {
  const report = useApp((s) => s.state?.hardware ?? null);
  const busy = useApp((s) => !!s.busy.hardware);
  const error = useApp((s) => s.errors.hardware);
  return (
    <section className="card" aria-labelledby="hardware-title">
      <h2 id="hardware-title">This computer</h2>
      {report ? <HardwareView report={report} /> : <p className="muted">Not checked yet.</p>}
      <button type="button" data-testid="hardware-check" disabled={busy} onClick={() => void actions.checkHardware()}>
        Check again
      </button>
      <ErrorText message={error} />
    </section>
  );
}

export function Settings() {
  const settings = useApp((s) => s.state?.settings);
  if (!settings) return null;
  return (
    <Screen title="Settings">
      <SettingsForm settings={settings} />
      <WalletSection />
      <HardwareSection />
    </Screen>
  );
}
