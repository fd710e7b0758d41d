import { parseArgs } from 'node:util';
import { plural } from '../core/plural.js';
import type { SettingSpec } from '../renew/settings.js';

/** One command-line flag: the parser and the help text are both made from this. */
export interface Flag {
  name: string;
  type: 'string' | 'boolean';
  /** The value's placeholder in the help (string flags). */
  arg?: string;
  help: string;
  short?: string;
  /** May be given more than once (a string flag): its value is then every one given, in order. */
  multiple?: boolean;
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

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

/** A repeatable string flag's values (none when absent). */
export const strs = (value: FlagValues[string]): string[] =>
  Array.isArray(value) ? value : typeof value === 'string' ? [value] : [];

const HELP_FLAG: Flag = { name: 'help', type: 'boolean', short: 'h', help: 'this help' };

/** A flag backed by a shared setting (renew/settings.ts): same name, help and default. */
export function settingFlag(spec: SettingSpec<unknown>): Flag {
  return { name: spec.flag, type: 'string', arg: spec.arg, help: spec.help };
}

/**
 * The flag meant by a mistyped one: the closest name within two edits (or one it begins), if any.
 * @example closestFlag('certz', ['certs', 'staples']) === 'certs'
 */
function closestFlag(typed: string, names: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const distance = name.startsWith(typed) || typed.startsWith(name) ? 1 : editDistance(typed, name);
    if (distance <= 2 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length]!;
}

/**
 * Refuses what parseArgs would word in its own terms: an unknown flag (with the likely one), and
 * a string flag whose value starts with a dash (`--timeout -1`), which parseArgs calls ambiguous:
 * such a value is passed on as `--timeout=-1`, for the setting to say what it must be.
 */
function checkedArgs(flags: readonly Flag[], args: readonly string[]): string[] {
  const byName = new Map(flags.map((f) => [f.name, f]));
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      out.push(...args.slice(i));
      break;
    }
    const long = /^--([^=]+)(=.*)?$/.exec(arg);
    if (long) {
      const flag = byName.get(long[1]!);
      if (!flag) {
        const meant = closestFlag(long[1]!, [...byName.keys()]);
        throw new UsageError(`unknown option '--${long[1]}'${meant ? `; did you mean '--${meant}'?` : ''}`);
      }
      const value = args[i + 1];
      if (flag.type === 'string' && long[2] === undefined && value !== undefined && /^-\d/.test(value)) {
        out.push(`--${flag.name}=${value}`);
        i++;
        continue;
      }
    }
    const short = /^-([^-\d])/.exec(arg);
    if (short && !flags.some((f) => f.short === short[1])) {
      throw new UsageError(`unknown option '${arg}'`);
    }
    out.push(arg);
  }
  return out;
}

/** Parses `args` by the command's flags (strictly); `help` is true when -h/--help was given. */
export function parseCommand(command: Command, args: string[]) {
  const flags = [...command.flags, HELP_FLAG];
  const { values, positionals } = parseArgs({
    args: checkedArgs(flags, args),
    options: Object.fromEntries(
      flags.map((f) => [
        f.name,
        { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) },
      ]),
    ),
    allowPositionals: true,
    strict: true,
  });
  const help = values.help === true;
  if (!help && positionals.length !== command.positionals) {
    // `renew ./certs`: the location is a flag's value there.
    const location = flags.find((f) => f.name === 'certs');
    if (command.positionals === 0 && location && positionals.length === 1) {
      throw new UsageError(
        `${command.name} takes no arguments: use --certs ${positionals[0]} for the certificates`,
      );
    }
    throw new UsageError(
      command.positionals === 0
        ? `${command.name} takes no arguments, got ${positionals.map((p) => `"${p}"`).join(' ')}`
        : `${command.name} expects ${plural(command.positionals, 'argument')}, got ${positionals.length}`,
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
