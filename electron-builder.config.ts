// How the desktop app is packaged (electron-builder). The app runs from the bundles of
// scripts/build-app.ts; the renderer is built beside them. Fuses are burnt into the Electron
// binary at packaging time and switch off what a shipped app must never do.
import type { Configuration } from 'electron-builder';

export const config: Configuration = {
  appId: 'org.trainathome.desktop',
  productName: 'Train at Home',
  directories: { output: 'dist/release', buildResources: 'build' },
  extraMetadata: { main: 'dist/app/main.js' },
  files: ['dist/app/**', 'package.json'],
  electronFuses: {
    // No ELECTRON_RUN_AS_NODE: the binary cannot be used as a plain Node (the worker is a utility process).
    runAsNode: false,
    enableCookieEncryption: true,
    // No NODE_OPTIONS and no --inspect: nothing outside the app can inject code or attach a debugger.
    enableNodeOptionsEnvironmentVariable: false,
    enableNodeCliInspectArguments: false,
    // The app is loaded only from its own, integrity-checked app.asar.
    enableEmbeddedAsarIntegrityValidation: true,
    onlyLoadAppFromAsar: true,
    // The UI comes from the app:// protocol; file:// pages get no extra powers.
    grantFileProtocolExtraPrivileges: false,
  },
};

export default config;
