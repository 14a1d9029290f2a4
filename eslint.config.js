// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '.data/**', '**/.turbo/**', 'bench/.work/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'Read configuration through the app env.ts only.' },
      ],
    },
  },
  {
    // The places allowed to read process.env: each app's env.ts, scripts, benches and tests.
    files: ['**/env.ts', 'scripts/**', 'bench/**', '**/*.test.ts', '**/test/**', 'vitest.config.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
);
