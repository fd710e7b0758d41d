import { errorMessage, fileErrorMessage } from '../core/errors.js';
import { printable } from '../core/printable.js';
import { SettingError } from '../renew/settings.js';
import { EXIT, STDIO, version, type CliIo } from './command-io.js';
import { fetchCommand } from './fetch.js';
import { commandHelp, parseCommand, UsageError, type Command } from './flags.js';
import { inspectCommand } from './inspect.js';
import { LockBusyError } from './lock.js';
import { renewCommand } from './renew.js';
import { statusCommand } from './status.js';

/** The commands, in help order. A new command is one more entry. */
function commands(io: CliIo): Command[] {
  return [renewCommand(io), inspectCommand(io), fetchCommand(io), statusCommand(io)];
}

function overview(list: Command[]): string {
  const width = Math.max(...list.map((c) => c.name.length)) + 2;
  return [
    `ocsp-renewer ${version()} — keep OCSP staples fresh`,
    '',
    'Usage:',
    ...list.map((c) => `  ocsp-renewer ${c.name} ${c.synopsis}`),
    '  ocsp-renewer <command> --help     the options of one command',
    '  ocsp-renewer --version',
    '',
    'Commands:',
    ...list.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
  ].join('\n');
}

export async function main(argv: string[], io: CliIo = STDIO): Promise<number> {
  const [name, ...rest] = argv;
  const list = commands(io);
  try {
    if (name === undefined) {
      io.err(overview(list));
      return EXIT.usage;
    }
    if (name === '--version' || name === '-V') {
      io.out(version());
      return EXIT.ok;
    }
    if (name === 'help' || name === '--help' || name === '-h') {
      const about = list.find((c) => c.name === rest[0]);
      io.out(about ? commandHelp(about) : overview(list));
      return EXIT.ok;
    }
    const command = list.find((c) => c.name === name);
    if (!command) throw new UsageError(`unknown command "${name}"`);
    const { values, positionals, help } = parseCommand(command, rest);
    if (help) {
      io.out(commandHelp(command));
      return EXIT.ok;
    }
    return await command.run(values, positionals);
  } catch (err) {
    // A message may quote a name, a URL or a certificate's field: one line, whatever they hold.
    if (
      err instanceof UsageError ||
      err instanceof SettingError ||
      (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      const helpFor = list.some((c) => c.name === name)
        ? `ocsp-renewer ${name} --help`
        : 'ocsp-renewer --help';
      io.err(`ocsp-renewer: ${printable(errorMessage(err))}\nRun "${helpFor}" for usage.`);
      return EXIT.usage;
    }
    if (err instanceof LockBusyError) {
      io.err(`ocsp-renewer: ${printable(errorMessage(err))}`);
      return EXIT.locked;
    }
    // The last backstop: whatever no command caught is said in words (a file-system error with
    // its path and what was being done), never a library's message or a stack trace. Exit 1.
    io.err(`ocsp-renewer: ${printable(fileErrorMessage(err))}`);
    return EXIT.failed;
  }
}
