/**
 * The dependency rule of lambda/ (docs/ARCHITECTURE.md, "Dependencies") as eslint.config.js
 * enforces it: each folder's allowed imports lint clean, each forbidden one is an error of
 * no-restricted-imports. Linted as text placed in the folder, so nothing is written to lambda/.
 */
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/vectors.js';

const eslint = new ESLint({ cwd: REPO_ROOT });

/** The no-restricted-imports errors of `import … from '<spec>'` in a file of `folder`. */
async function restricted(folder: string, spec: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import * as m from '${spec}';\nexport const used = m;\n`, {
    filePath: `${REPO_ROOT}/lambda/${folder}/boundary-probe.ts`,
  });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

const RULES: Array<[folder: string, allowed: string[], forbidden: string[]]> = [
  [
    'core',
    ['./der.js', 'node:crypto', 'asn1js'],
    ['../renew/ports.js', '../renew/run.js', '../report/explain.js', '../adapters/s3.js', '../cli/cli.js',
      '../aws/handler.js', 'node:fs', 'node:http', '@aws-sdk/client-s3'],
  ],
  [
    'renew',
    ['../core/validate.js', './ports.js', './run.js', 'p-limit'],
    ['../adapters/s3.js', '../report/explain.js', '../cli/cli.js', '../aws/handler.js', 'node:fs',
      '@aws-sdk/client-s3'],
  ],
  [
    'adapters',
    ['../core/der.js', '../renew/ports.js', './http.js', 'node:fs', '@aws-sdk/client-s3'],
    ['../renew/run.js', '../renew/ocsp-query.js', '../report/explain.js', '../cli/cli.js', '../aws/handler.js'],
  ],
  [
    'report',
    ['../core/status.js', '../renew/ports.js', './progress.js'],
    ['../renew/run.js', '../adapters/s3.js', '../cli/cli.js', '../aws/handler.js', 'node:fs', '@aws-sdk/client-s3'],
  ],
  [
    'cli',
    ['../core/der.js', '../renew/run.js', '../adapters/s3.js', '../report/explain.js', './flags.js'],
    ['../aws/handler.js'],
  ],
  [
    'aws',
    ['../core/der.js', '../renew/run.js', '../adapters/s3.js', '../report/status-page.js', './config.js'],
    ['../cli/cli.js'],
  ],
]; // prettier-ignore

describe('lambda/ import boundaries (eslint no-restricted-imports)', () => {
  describe.each(RULES)('lambda/%s', (folder, allowed, forbidden) => {
    it.each(allowed)('may import %s', async (spec) => {
      expect(await restricted(folder, spec)).toEqual([]);
    });
    it.each(forbidden)('may not import %s', async (spec) => {
      expect(await restricted(folder, spec)).toHaveLength(1);
    });
  });
});
