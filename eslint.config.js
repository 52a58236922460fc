// ESLint: typescript-eslint's type-aware rules over the whole tree (src, test, bench). Formatting is
// Prettier's job (`npm run format`); the lint only reports code that is wrong or likely to be.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Promises nobody awaits lose their errors; async callbacks where a sync one is expected
      // (signal handlers, event listeners) swallow them.
      // node:test's describe()/it() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // An async method that does not await still keeps its interface's contract (a Promise, and
      // errors as rejections rather than throws).
      '@typescript-eslint/require-await': 'off',
      // Mail protocols are about control characters: CR, LF, NUL in parsers and validators.
      'no-control-regex': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
