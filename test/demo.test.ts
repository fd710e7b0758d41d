import { describe, expect, it } from 'vitest';
import { findAwsCli, runDemo } from './demo/run-demo.js';

describe('npm run demo', () => {
  it.runIf(findAwsCli() !== undefined)(
    'renews through the Lambda handler, pulls with the host script and a TLS client sees a good staple',
    async () => {
      const lines: string[] = [];
      const result = await runDemo((line) => lines.push(line));
      expect(result.renewed).toBe(3);
      expect(result.installed).toEqual(['web/good.ocsp', 'web/mustStaple.ocsp']);
      expect(result.clientStatus).toBe('successful/good');
      // The fleet path: 3 of the 4 uploads have an OCSP URL; none is due at once, all 20 h later (past every jittered refresh point, which stays before nextUpdate minus the 6 h guard).
      expect(result.fleet).toEqual({ uploadRenewed: 3, dueNow: 0, dueLater: 3, dueRenewed: 3 });
      expect(result.ok).toBe(true);
      expect(lines.join('\n')).toContain('DEMO OK');
    },
    60_000,
  );
});
