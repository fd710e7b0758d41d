import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', 'dist/', 'coverage/', 'scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        URL: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // lambda/core is pure (docs/ARCHITECTURE.md): no I/O, no SDK, no adapters, no orchestration.
    files: ['lambda/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            'fs',
            'node:fs',
            'node:fs/promises',
            'http',
            'https',
            'node:http',
            'node:https',
            'net',
            'node:net',
            'node:dns',
            'node:child_process',
          ].map((name) => ({
            name,
            message: 'lambda/core does no I/O: use a port (lambda/renew/ports.ts).',
          })),
          patterns: [
            { group: ['@aws-sdk/*', 'aws-lambda'], message: 'lambda/core imports no AWS SDK.' },
            {
              group: ['**/adapters/*', '**/cli/*', '**/aws/*'],
              message: 'lambda/core imports no adapter or entry point.',
            },
          ],
        },
      ],
    },
  },
);
