// The wallet's setup, shared by onboarding and Settings: create a hotkey (its 12 words shown once,
// then the user confirms they wrote them down) or import one from its words; the consent to keep
// the key unencrypted where there is no keyring. Recovery words live only in this component's
// state, never in a store.
import { type ReactNode, useState } from 'react';
import { actions, clearError, isKeyringProblem, useApp } from '../stores/app.ts';
import { ErrorText } from './ErrorText.tsx';

/** The recovery words in order; each item ends with a space so that the text reads as the phrase. */
export function MnemonicWords({ mnemonic }: { mnemonic: string }) {
  const words = mnemonic.trim().split(/\s+/);
  return (
    <ol className="mnemonic" data-testid="mnemonic-words" aria-label={`Your ${words.length} recovery words, in order`}>
      {words.map((w, i) => (
        <li key={i}>{`${w} `}</li>
      ))}
    </ol>
  );
}

/** Where there is no OS keyring: the user's consent to keep the key as a file only they can read. */
export function PlaintextConsent() {
  const walletProblem = useApp((s) => s.state?.walletProblem);
  const noKeyring = useApp((s) => s.state?.keyStorage === 'plaintext');
  const allowed = useApp((s) => !!s.state?.settings.allowPlaintextKey);
  const hasWallet = useApp((s) => !!s.state?.wallet);
  const createError = useApp((s) => s.errors.walletCreate);
  const importError = useApp((s) => s.errors.walletImport);
  const busy = useApp((s) => !!s.busy.plaintext);
  const error = useApp((s) => s.errors.plaintext);
  // The box shows the user's choice at once; the setting follows when main has saved it.
  const [choice, setChoice] = useState<boolean | null>(null);
  // Asked before the first wallet where main says there is no keyring, and whenever a wallet
  // cannot be written or opened for want of one.
  const needed = isKeyringProblem(walletProblem) || isKeyringProblem(createError) || isKeyringProblem(importError) || (!hasWallet && noKeyring);
  if (!needed) return null;
  return (
    <div className="consent warn-box">
      <p>
        This computer has no keyring (the operating system's safe for secrets), so the wallet's key would be stored unencrypted, in a file only your user account can read.
        Anyone who can read your files could take it.
      </p>
      <label className="check">
        <input
          type="checkbox"
          data-testid="plaintext-consent"
          checked={choice ?? allowed}
          disabled={busy}
          onChange={(e) => {
            setChoice(e.target.checked);
            void actions.updateSettings({ allowPlaintextKey: e.target.checked }, 'plaintext').then((r) => {
              setChoice(null);
              if (r.ok) {
                clearError('walletCreate');
                clearError('walletImport');
              }
            });
          }}
        />
        <span>I understand: keep my key unencrypted on this computer</span>
      </label>
      <ErrorText message={error} />
    </div>
  );
}

/**
 * Create or import; then (after create) the backup step. `onDone` once the wallet is ready and backed
 * up; `existing` is shown instead when there already is a backed-up wallet; `later` offers to
 * put the backup off (onboarding).
 */
export function WalletSetup({ onDone, existing = null, later = true }: { onDone: () => void; existing?: ReactNode; later?: boolean }) {
  const wallet = useApp((s) => s.state?.wallet ?? null);
  const errors = useApp((s) => s.errors);
  const busy = useApp((s) => s.busy);
  const [mnemonic, setMnemonic] = useState<string | null>(null);
  const [phrase, setPhrase] = useState('');

  if (mnemonic !== null || (wallet && !wallet.backedUp)) {
    return (
      <div className="wallet-backup">
        {mnemonic !== null ? (
          <>
            <p>
              <strong>Write these {mnemonic.trim().split(/\s+/).length} words down, in order, on paper.</strong> They are the only way to get your wallet back if this computer
              breaks. Anyone who has them can take your earnings: never type them into a website or share them.
            </p>
            <MnemonicWords mnemonic={mnemonic} />
          </>
        ) : (
          <>
            <p>Your wallet exists, but you have not confirmed that you wrote its recovery words down.</p>
            <button type="button" data-testid="reveal-mnemonic" disabled={!!busy.reveal} onClick={() => void actions.revealMnemonic().then((r) => r.ok && setMnemonic(r.value.mnemonic))}>
              Show the recovery words
            </button>
            <ErrorText message={errors.reveal} />
          </>
        )}
        <div className="actions">
          {mnemonic !== null ? (
            <button
              type="button"
              className="primary"
              data-testid="backup-confirm"
              disabled={!!busy.confirmBackup}
              onClick={() =>
                void actions.confirmBackup().then((r) => {
                  if (!r.ok) return;
                  setMnemonic(null);
                  onDone();
                })
              }
            >
              I have written them down
            </button>
          ) : null}
          {wallet && later ? (
            <button type="button" className="ghost" data-testid="wallet-continue" onClick={onDone}>
              Remind me later
            </button>
          ) : null}
        </div>
        <ErrorText message={errors.confirmBackup} testid="backup-error" />
      </div>
    );
  }

  if (wallet) return <>{existing}</>;

  return (
    <div className="wallet-setup">
      <PlaintextConsent />
      <div className="grid-2">
        <div className="option">
          <h3>Create a new wallet</h3>
          <p className="muted">For most people. The app makes a new key for this computer and shows you its recovery words once.</p>
          <button type="button" className="primary" data-testid="wallet-create" disabled={!!busy.walletCreate || !!busy.plaintext} onClick={() => void actions.createWallet().then((r) => r.ok && setMnemonic(r.value.mnemonic))}>
            Create a wallet
          </button>
          <ErrorText message={errors.walletCreate} testid="wallet-create-error" />
        </div>
        <form
          className="option"
          onSubmit={(e) => {
            e.preventDefault();
            void actions.importWallet(phrase).then((r) => {
              if (!r.ok) return;
              setPhrase('');
              onDone();
            });
          }}
        >
          <h3>Use a wallet I already have</h3>
          <label htmlFor="mnemonic-input">Its recovery words (12 to 24, separated by spaces)</label>
          <textarea
            id="mnemonic-input"
            data-testid="mnemonic-input"
            rows={3}
            value={phrase}
            autoComplete="off"
            autoCapitalize="off"
            spellCheck={false}
            aria-invalid={errors.walletImport ? true : undefined}
            onChange={(e) => {
              setPhrase(e.target.value);
              clearError('walletImport');
            }}
          />
          <button type="submit" data-testid="wallet-import" disabled={!!busy.walletImport || !!busy.plaintext}>
            Import
          </button>
          <ErrorText message={errors.walletImport} testid="wallet-import-error" />
        </form>
      </div>
    </div>
  );
}
