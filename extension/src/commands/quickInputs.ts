// Quick input helpers for the credential and secret commands: a list that opens at once and fills
// in when the server's answer arrives (rows may carry buttons), and input box validation messages.
import * as vscode from 'vscode';
import type { ListEntry } from '../credentials/listRows';
import type { InputProblem } from '../credentials/validation';
import { errorMessage } from '../logger';

/** A validation result as an input box shows it (an error blocks Enter, a warning or info does not). */
export function toValidation(problem: InputProblem | undefined): vscode.InputBoxValidationMessage | undefined {
  if (!problem) return undefined;
  return { message: problem.message, severity: problem.severity === 'error' ? vscode.InputBoxValidationSeverity.Error : vscode.InputBoxValidationSeverity.Warning };
}

export function info(message: string): vscode.InputBoxValidationMessage {
  return { message, severity: vscode.InputBoxValidationSeverity.Info };
}

export interface RowButton {
  id: string;
  icon: string;
  tooltip: string;
}

type Item<T> = vscode.QuickPickItem & { value?: T };

export interface ListPickResult<T> {
  value: T;
  /** The id of the row button pressed, when a button (not the row) was chosen. */
  button?: string;
}

export function pickFromList<T>(options: {
  title: string;
  placeholder: string;
  load: () => Promise<ListEntry<T>[]>;
  buttons?: (value: T) => RowButton[];
}): Promise<ListPickResult<T> | undefined> {
  const pick = vscode.window.createQuickPick<Item<T>>();
  pick.title = options.title;
  pick.placeholder = 'Loading from the Berth server…';
  pick.matchOnDescription = true;
  pick.matchOnDetail = true;
  pick.ignoreFocusOut = true;
  pick.busy = true;
  return new Promise<ListPickResult<T> | undefined>((resolve, reject) => {
    let settled = false;
    const finish = (result: ListPickResult<T> | undefined, error?: unknown) => {
      if (settled) return;
      settled = true;
      pick.dispose();
      if (error !== undefined) reject(error instanceof Error ? error : new Error(errorMessage(error)));
      else resolve(result);
    };
    pick.onDidAccept(() => {
      const item = pick.selectedItems[0];
      if (item?.value !== undefined) finish({ value: item.value });
    });
    pick.onDidTriggerItemButton((e) => {
      const id = (e.button as vscode.QuickInputButton & { id?: string }).id;
      if (e.item.value !== undefined && id) finish({ value: e.item.value, button: id });
    });
    pick.onDidHide(() => finish(undefined));
    pick.show();
    options.load().then(
      (entries) => {
        if (settled) return;
        pick.items = entries.map((entry): Item<T> => {
          if (entry.kind === 'separator') return { label: entry.label, kind: vscode.QuickPickItemKind.Separator };
          const buttons = options.buttons?.(entry.value) ?? [];
          return {
            label: entry.label,
            description: entry.description,
            detail: entry.detail,
            value: entry.value,
            buttons: buttons.map((b) => ({ iconPath: new vscode.ThemeIcon(b.icon), tooltip: b.tooltip, id: b.id })),
          };
        });
        pick.placeholder = options.placeholder;
        pick.busy = false;
      },
      (err: unknown) => finish(undefined, err),
    );
  });
}
