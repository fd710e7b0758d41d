import { parseArgs } from 'node:util';
import type { SettingSpec } from '../renew/settings.js';

/** One command-line flag: the parser and the help text are both made from this. */
export interface Flag {
  name: string;
  type: 'string' | 'boolean';
  /** The value's placeholder in the help (string flags). */
  arg?: string;
  help: string;
  short?: string;
}

export type FlagValues = Record<string, string | boolean | undefined>;

/** A command: its flags parse its arguments and make its help, so the two cannot disagree. */
export interface Command {
  name: string;
  /** The synopsis after `ocsp-renewer <name> `. */
  synopsis: string;
  /** One line for the overview. */
  summary: string;
  /** Paragraphs printed under the synopsis in `<name> --help`. */
  description: string;
  positionals: number;
  flags: readonly Flag[];
  run(values: FlagValues, positionals: string[]): Promise<number>;
}

/** The command line is wrong (exit 2, with the command's help). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'USAGE';
}

/** A string flag's value, or undefined when absent (or given as a boolean). */
export const str = (value: FlagValues[string]) => (typeof value === 'string' ? value : undefined);

const HELP_FLAG: Flag = { name: 'help', type: 'boolean', short: 'h', help: 'this help' };

/** A flag backed by a shared setting (renew/settings.ts): same name, help and default. */
export function settingFlag(spec: SettingSpec<unknown>): Flag {
  return { name: spec.flag, type: 'string', arg: spec.arg, help: spec.help };
}

/** Parses `args` by the command's flags (strictly); `help` is true when -h/--help was given. */
export function parseCommand(command: Command, args: string[]) {
  const flags = [...command.flags, HELP_FLAG];
  const { values, positionals } = parseArgs({
    args,
    options: Object.fromEntries(
      flags.map((f) => [f.name, f.short ? { type: f.type, short: f.short } : { type: f.type }]),
    ),
    allowPositionals: true,
    strict: true,
  });
  const help = values.help === true;
  if (!help && positionals.length !== command.positionals) {
    throw new UsageError(
      `${command.name} expects ${command.positionals} argument(s), got ${positionals.length}`,
    );
  }
  return { values: values as FlagValues, positionals, help };
}

/** `<command> --help`: synopsis, description and exactly the flags the command accepts. */
export function commandHelp(command: Command): string {
  const flags = [...command.flags, HELP_FLAG];
  const left = flags.map((f) => `${f.short ? `-${f.short}, ` : ''}--${f.name}${f.arg ? ` <${f.arg}>` : ''}`);
  const width = Math.max(...left.map((l) => l.length)) + 2;
  return [
    `Usage: ocsp-renewer ${command.name} ${command.synopsis}`,
    '',
    command.description,
    '',
    'Options:',
    ...flags.map((f, i) => `  ${left[i]!.padEnd(width)}${f.help}`),
    '',
  ].join('\n');
}
