// The left status bar item: follows every preparing step, then ready / working / failed.
import * as vscode from 'vscode';
import type { SessionController } from './session/sessionController';
import { presentStatus } from './statusBarModel';

export const REVEAL_ERROR_COMMAND = 'berth.revealError';
export const OPEN_CHAT_COMMAND = 'berth.openChat';

export function createStatusBar(controller: SessionController): vscode.Disposable {
  const item = vscode.window.createStatusBarItem('berth.status', vscode.StatusBarAlignment.Left, 100);
  item.name = 'Berth session';
  const update = () => {
    const p = presentStatus(controller.state);
    if (!p.visible) {
      item.hide();
      return;
    }
    item.text = p.text;
    item.tooltip = p.tooltip;
    item.backgroundColor = p.error
      ? new vscode.ThemeColor('statusBarItem.errorBackground')
      : p.warning
        ? new vscode.ThemeColor('statusBarItem.warningBackground')
        : undefined;
    item.command = p.action === 'revealError' ? REVEAL_ERROR_COMMAND : OPEN_CHAT_COMMAND;
    item.accessibilityInformation = { label: p.text.replace(/\$\([^)]*\)\s*/g, ''), role: 'button' };
    item.show();
  };
  update();
  const unsubscribe = controller.onDidChange(update);
  return vscode.Disposable.from(item, { dispose: unsubscribe });
}
