const MINUTES_PER_DAY = 24 * 60;

/**
 * The longest gap, in minutes, between two runs of an EventBridge Scheduler expression: exact for
 * `rate(…)`, and for a `cron(…)` that runs every day (day-of-month and day-of-week `*` or `?`,
 * month `*`), the largest gap between its run times of a day, midnight wrap included. The "no run
 * reported" alarm's period is derived from it.
 *
 * Throws for `at(…)` (one run is not a schedule), for crons restricted to some days (the renewer
 * must run at least daily), and for anything it cannot read.
 *
 * @example
 * scheduleIntervalMinutes('rate(15 minutes)'); // 15
 * scheduleIntervalMinutes('cron(0/20 8-17 * * ? *)'); // 860: from 17:40 to 08:00 the next day
 */
export function scheduleIntervalMinutes(expression: string): number {
  const rate = /^rate\(\s*(\d+)\s+(minutes?|hours?|days?)\s*\)$/.exec(expression.trim());
  if (rate) {
    const value = Number(rate[1]);
    const unit = rate[2]!;
    if (value < 1) throw new Error(`schedule ${expression}: the rate must be at least 1`);
    if ((value === 1) !== !unit.endsWith('s')) {
      throw new Error(`schedule ${expression}: write rate(1 ${unit.replace(/s$/, '')}) or rate(N ${unit}s)`);
    }
    const minutes = unit.startsWith('minute') ? value : unit.startsWith('hour') ? value * 60 : value * 1440;
    return minutes;
  }
  const cron = /^cron\((.*)\)$/.exec(expression.trim());
  if (!cron) {
    throw new Error(`schedule ${expression}: expected rate(…) or cron(…), a recurring Scheduler expression`);
  }
  const fields = cron[1]!.trim().split(/\s+/);
  if (fields.length !== 6) {
    throw new Error(
      `schedule ${expression}: a cron has 6 fields (minutes hours day-of-month month day-of-week year)`,
    );
  }
  const [minutesField, hoursField, dayOfMonth, month, dayOfWeek, year] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  const every = (f: string) => f === '*' || f === '?';
  if (!every(dayOfMonth) || !every(month) || !every(dayOfWeek) || year !== '*') {
    throw new Error(
      `schedule ${expression}: the renewer must run every day; restrict minutes and hours only`,
    );
  }
  const minutes = expandCronField(minutesField, 0, 59, expression);
  const hours = expandCronField(hoursField, 0, 23, expression);
  const times = hours.flatMap((h) => minutes.map((m) => h * 60 + m)).sort((a, b) => a - b);
  let gap = times[0]! + MINUTES_PER_DAY - times[times.length - 1]!;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!);
  return gap;
}

/** The values of one cron field: `*`, `n`, `a-b`, `*∕n`, `a∕n`, `a-b∕n`, and comma lists of them. */
function expandCronField(field: string, min: number, max: number, expression: string): number[] {
  const values = new Set<number>();
  for (const part of field.split(',')) {
    const match = /^(\*|\d+)(?:-(\d+))?(?:\/(\d+))?$/.exec(part);
    if (!match) throw new Error(`schedule ${expression}: cannot read the cron field "${field}"`);
    const start = match[1] === '*' ? min : Number(match[1]);
    const end = match[2] !== undefined ? Number(match[2]) : match[1] === '*' || match[3] ? max : start;
    const step = match[3] !== undefined ? Number(match[3]) : 1;
    if (start < min || end > max || start > end || step < 1) {
      throw new Error(`schedule ${expression}: the cron field "${field}" is out of range ${min}-${max}`);
    }
    for (let v = start; v <= end; v += step) values.add(v);
  }
  return [...values];
}
