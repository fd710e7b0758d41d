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
      expect(result.ok).toBe(true);
      expect(lines.join('\n')).toContain('DEMO OK');
    },
    60_000,
  );
});
