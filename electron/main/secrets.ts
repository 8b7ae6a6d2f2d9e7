// Electron's safeStorage as the wallet's secret box: the OS keychain (macOS), DPAPI (Windows) or
// the desktop keyring (Linux: libsecret, KWallet). Linux without a keyring falls back to
// "basic_text", a key compiled into Chromium, which protects nothing: that counts as plaintext,
// and the wallet then asks for the user's consent before writing the key.
import { safeStorage } from 'electron';
import type { SecretBox } from '../core/wallet.ts';

export function safeStorageBox(): SecretBox {
  return {
    protection: () => {
      if (!safeStorage.isEncryptionAvailable()) return 'plaintext';
      if (process.platform === 'linux' && ['basic_text', 'unknown'].includes(safeStorage.getSelectedStorageBackend())) return 'plaintext';
      return 'os';
    },
    encrypt: (plain) => safeStorage.encryptString(plain),
    decrypt: (data) => safeStorage.decryptString(data),
  };
}
