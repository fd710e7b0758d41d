/** Time units and the instants tests run their clocks at. */

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;

/**
 * Now, to the whole second: `openssl ocsp` writes its times to the second, so a response it signs
 * "now" is never later than a clock at T0.
 */
export const T0 = new Date(Math.floor(Date.now() / 1000) * 1000);

/** `hours` after T0 (before it when negative). */
export const at = (hours: number): Date => new Date(T0.getTime() + hours * HOUR);
