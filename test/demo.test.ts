import { describe, expect, it } from 'vitest';
import { findAwsCli, runDemo } from './demo/run-demo.js';

describe('npm run demo', () => {
  it.runIf(findAwsCli() !== undefined)(
    'renews through the Lambda handler, pulls with the host script, a TLS client sees a good staple, and a force runs through the state machine',
    async () => {
      const lines: string[] = [];
      const result = await runDemo((line) => lines.push(line));
      expect(result.renewed).toBe(3);
      expect(result.installed).toEqual(['web/good.ocsp', 'web/mustStaple.ocsp']);
      expect(result.clientStatus).toBe('successful/good');
      // The fleet path: 3 of the 4 uploads have an OCSP URL; none is due at once, all 20 h later (past every jittered refresh point, which stays before nextUpdate minus the 6 h guard).
      expect(result.fleet).toEqual({ uploadRenewed: 3, dueNow: 0, dueLater: 3, dueRenewed: 3 });
      // "Force all": {"mode":"force"} started the synthesized state machine with ForceAllCommand's
      // input; its map listed the four certificates into one child, which renewed the three with an
      // OCSP URL through the same handler.
      expect(result.forced).toEqual({ input: '{"force":true}', children: 1, renewed: 3, failed: 0 });
      expect(lines.join('\n')).toContain('force all: 3 renewed by 1 map child of the state machine');
      expect(result.ok).toBe(true);
      expect(lines.join('\n')).toContain('DEMO OK');
    },
    60_000,
  );
});
