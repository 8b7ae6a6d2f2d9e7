// The tray icon and its menu, rebuilt from the pure tray model on every state change.
import { Menu, Tray, nativeImage } from 'electron';
import { join } from 'node:path';
import type { AppState } from '../ipc-contract.ts';
import { type TrayAction, trayModel } from '../core/tray-model.ts';

export function createTray(opts: { iconDir: string; onAction: (action: TrayAction) => void }): { update(state: AppState): void; destroy(): void } {
  const mac = process.platform === 'darwin';
  // macOS draws template images in the menu bar's own colours (light or dark).
  const image = (icon: string) => {
    const img = nativeImage.createFromPath(join(opts.iconDir, mac ? `${icon}Template.png` : `${icon}.png`));
    if (mac) img.setTemplateImage(true);
    return img;
  };
  const tray = new Tray(image('idle'));
  let shown = '';
  return {
    update(state) {
      const model = trayModel(state, process.platform);
      const key = JSON.stringify(model);
      if (key === shown) return;
      shown = key;
      tray.setImage(image(model.icon));
      tray.setToolTip(model.tooltip);
      if (mac) tray.setTitle(model.title);
      tray.setContextMenu(
        Menu.buildFromTemplate(
          model.items.map((item) =>
            item.type === 'separator'
              ? { type: 'separator' as const }
              : { label: item.label, enabled: item.enabled, click: item.action ? () => opts.onAction(item.action!) : undefined },
          ),
        ),
      );
    },
    destroy: () => tray.destroy(),
  };
}
