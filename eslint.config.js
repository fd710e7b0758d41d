import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Modules that do I/O: core, renew and report reach the world only through a port. */
const IO_MODULES = [
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
];

/**
 * The import rule of one folder of lambda/: `forbidden` patterns (relative to a file in it), and
 * with `io` no module that does I/O, with `sdk` no AWS SDK.
 */
function layer(folder, forbidden, { io = false, sdk = false } = {}) {
  return {
    files: [`${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: io
            ? IO_MODULES.map((name) => ({
                name,
                message: `${folder} does no I/O: use a port (lambda/renew/ports.ts).`,
              }))
            : [],
          patterns: [
            ...(sdk
              ? [{ group: ['@aws-sdk/*', 'aws-lambda'], message: `${folder} imports no AWS SDK.` }]
              : []),
            ...forbidden,
          ],
        },
      ],
    },
  };
}

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
  // Which folder of lambda/ may import which (docs/ARCHITECTURE.md, "Dependencies"): core imports
  // only core; renew imports core and its own files; adapters and report import core and
  // renew/ports.ts; the entry points cli/ and aws/ import anything below them, never each other.
  layer('lambda/core', [{ group: ['../*'], message: 'lambda/core imports only lambda/core.' }], {
    io: true,
    sdk: true,
  }),
  layer(
    'lambda/renew',
    [
      {
        group: ['../adapters/*', '../report/*', '../cli/*', '../aws/*'],
        message: 'lambda/renew imports lambda/core and lambda/renew only.',
      },
    ],
    { io: true, sdk: true },
  ),
  layer('lambda/adapters', [
    {
      group: ['../renew/*', '!../renew/ports.js', '../report/*', '../cli/*', '../aws/*'],
      message: 'an adapter imports lambda/core and lambda/renew/ports.ts only.',
    },
  ]),
  layer(
    'lambda/report',
    [
      {
        group: ['../renew/*', '!../renew/ports.js', '../adapters/*', '../cli/*', '../aws/*'],
        message: 'lambda/report imports lambda/core and lambda/renew/ports.ts only.',
      },
    ],
    { io: true, sdk: true },
  ),
  layer('lambda/cli', [{ group: ['../aws/*'], message: 'the CLI does not import the Lambda entry point.' }]),
  layer('lambda/aws', [{ group: ['../cli/*'], message: 'the Lambda entry point does not import the CLI.' }]),
);
