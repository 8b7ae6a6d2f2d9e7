// First run, shown until settings.onboarded (the app stays paused until then): check the hardware,
// make or import the wallet and back it up, optionally set the payout address, and confirm the
// few settings that matter (orchestrator, battery, start at login). Finishing saves onboarded.
import { type ReactNode, useEffect, useState } from 'react';
import { ErrorText } from '../components/ErrorText.tsx';
import { HardwareView } from '../components/Hardware.tsx';
import { WalletSetup } from '../components/Wallet.tsx';
import { shortAddress } from '../format.ts';
import { useFocusOnNavigate } from '../hooks.ts';
import { splitSettingsError } from '../settingsErrors.ts';
import { actions, clearError, clearErrors, useApp } from '../stores/app.ts';

type Step = 'hardware' | 'wallet' | 'payout' | 'settings';
const STEPS: { step: Step; label: string }[] = [
  { step: 'hardware', label: 'Your computer' },
  { step: 'wallet', label: 'Wallet' },
  { step: 'payout', label: 'Payout address' },
  { step: 'settings', label: 'Settings' },
];

function HardwareStep({ onNext }: { onNext: () => void }) {
  const report = useApp((s) => s.state?.hardware ?? null);
  const busy = useApp((s) => !!s.busy.hardware);
  const error = useApp((s) => s.errors.hardware);
  useEffect(() => {
    void actions.checkHardware();
  }, []);
  return (
    <>
      <h2>Can this computer help?</h2>
      <p className="muted">Training a language model takes memory, disk space and, ideally, a graphics card. Here is what this computer has.</p>
      {report ? <HardwareView report={report} /> : <p className="muted">{busy ? 'Checking this computer…' : 'Not checked yet.'}</p>}
      <ErrorText message={error} testid="hardware-error" />
      <div className="actions">
        <button type="button" onClick={() => void actions.checkHardware()} disabled={busy} data-testid="hardware-check">
          Check again
        </button>
        <button type="button" className="primary" data-testid="hardware-continue" onClick={onNext}>
          Continue
        </button>
      </div>
    </>
  );
}

function WalletStep({ onNext }: { onNext: () => void }) {
  const wallet = useApp((s) => s.state?.wallet ?? null);
  const walletProblem = useApp((s) => s.state?.walletProblem ?? null);
  return (
    <>
      <h2>Your wallet</h2>
      <p className="muted">The wallet is how the network recognises this computer and pays it. It is a key kept on this computer; its recovery words are the backup.</p>
      {walletProblem ? (
        <p className="warn-box" data-testid="wallet-problem">
          {walletProblem}
        </p>
      ) : null}
      <WalletSetup
        onDone={onNext}
        existing={
          wallet ? (
            <>
              <p>
                This computer has a wallet: <span className="mono">{wallet.address}</span>
              </p>
              <div className="actions">
                <button type="button" className="primary" data-testid="wallet-continue" onClick={onNext}>
                  Continue
                </button>
              </div>
            </>
          ) : null
        }
      />
    </>
  );
}

function PayoutStep({ onNext }: { onNext: () => void }) {
  const wallet = useApp((s) => s.state?.wallet ?? null);
  const busy = useApp((s) => !!s.busy.payout);
  const error = useApp((s) => s.errors.payout);
  const [address, setAddress] = useState(wallet?.payoutAddress ?? '');
  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        void actions.setPayout(address.trim() === '' ? null : address.trim()).then((r) => r.ok && onNext());
      }}
    >
      <h2>Where should rewards go?</h2>
      <p className="muted">
        Optional. Rewards are earned by this computer's key{wallet ? ` (${shortAddress(wallet.address)})` : ''}. If you have a Bittensor coldkey (the wallet you keep your funds in),
        paste its address here to have rewards paid to it. You can do this later in Settings.
      </p>
      <label htmlFor="payout-input">Coldkey address (starts with 5)</label>
      <input
        id="payout-input"
        data-testid="payout-input"
        value={address}
        autoComplete="off"
        spellCheck={false}
        aria-invalid={error ? true : undefined}
        aria-describedby={error ? 'payout-error' : undefined}
        onChange={(e) => {
          setAddress(e.target.value);
          clearError('payout');
        }}
      />
      <div id="payout-error">
        <ErrorText message={error} testid="payout-error" />
      </div>
      <div className="actions">
        <button type="button" className="ghost" data-testid="payout-skip" onClick={onNext}>
          Skip for now
        </button>
        <button type="submit" className="primary" data-testid="payout-save" disabled={busy}>
          Save and continue
        </button>
      </div>
    </form>
  );
}

function SettingsStep() {
  const settings = useApp((s) => s.state?.settings);
  const busy = useApp((s) => !!s.busy.onboard);
  const error = useApp((s) => s.errors.onboard);
  const [url, setUrl] = useState(settings?.orchestratorUrl ?? '');
  const [runOnBattery, setRunOnBattery] = useState(settings?.runOnBattery ?? false);
  const [startAtLogin, setStartAtLogin] = useState(settings?.startAtLogin ?? false);
  const split = splitSettingsError(error, ['orchestratorUrl', 'runOnBattery', 'startAtLogin', 'onboarded']);
  return (
    <form
      noValidate
      onSubmit={(e) => {
        e.preventDefault();
        void actions.updateSettings({ orchestratorUrl: url.trim(), runOnBattery, startAtLogin, onboarded: true }, 'onboard');
      }}
    >
      <h2>Last details</h2>
      <label htmlFor="orchestrator-url">Network address (the orchestrator that hands out the work)</label>
      <input
        id="orchestrator-url"
        type="url"
        data-testid="orchestrator-url"
        value={url}
        spellCheck={false}
        aria-invalid={split.fields.orchestratorUrl ? true : undefined}
        aria-describedby="orchestrator-url-help"
        onChange={(e) => {
          setUrl(e.target.value);
          clearError('onboard');
        }}
      />
      <p id="orchestrator-url-help" className="muted small">
        Keep the address you were given; the default is a network on this computer.
      </p>
      <ErrorText message={split.fields.orchestratorUrl} testid="orchestrator-url-error" />
      <label className="check">
        <input type="checkbox" data-testid="onboarding-run-on-battery" checked={runOnBattery} onChange={(e) => setRunOnBattery(e.target.checked)} />
        <span>Also train on battery power (off: training pauses when the laptop is unplugged)</span>
      </label>
      <label className="check">
        <input type="checkbox" data-testid="onboarding-start-at-login" checked={startAtLogin} onChange={(e) => setStartAtLogin(e.target.checked)} />
        <span>Start the app when I log in</span>
      </label>
      <ErrorText message={split.rest} testid="onboarding-error" />
      <div className="actions">
        <button type="submit" className="primary" data-testid="onboarding-finish" disabled={busy}>
          Finish
        </button>
      </div>
    </form>
  );
}

/** `notices`: the app's notice banners, shown at the top of the page. */
export function Onboarding({ notices }: { notices?: ReactNode }) {
  const [step, setStep] = useState<Step>('hardware');
  const heading = useFocusOnNavigate<HTMLHeadingElement>();
  const index = STEPS.findIndex((s) => s.step === step);
  const go = (next: Step) => {
    clearErrors();
    setStep(next);
    // Keyboard and screen-reader users land at the top of the new step.
    window.requestAnimationFrame(() => heading.current?.focus());
  };
  const afterHardware = () => {
    const wallet = useApp.getState().state?.wallet;
    // An existing wallet is not created again; one not yet backed up still gets its backup step.
    go(wallet?.backedUp ? 'payout' : 'wallet');
  };
  return (
    <main className="onboarding" data-testid="onboarding" data-step={step}>
      {notices}
      <h1 ref={heading} tabIndex={-1}>
        Welcome to Train at Home
      </h1>
      <p className="intro">People train a language model together, each home computer holding a few of its layers. Four short steps, and this computer can join.</p>
      <ol className="steps" aria-label="Setup steps">
        {STEPS.map((s, i) => (
          <li key={s.step} className={i < index ? 'done' : i === index ? 'current' : undefined} aria-current={i === index ? 'step' : undefined}>
            <span className="step-n">{i + 1}</span> {s.label}
          </li>
        ))}
      </ol>
      <div className="card onboarding-card">
        {step === 'hardware' ? <HardwareStep onNext={afterHardware} /> : null}
        {step === 'wallet' ? <WalletStep onNext={() => go('payout')} /> : null}
        {step === 'payout' ? <PayoutStep onNext={() => go('settings')} /> : null}
        {step === 'settings' ? <SettingsStep /> : null}
      </div>
    </main>
  );
}
