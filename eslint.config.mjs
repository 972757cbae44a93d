// Type-aware lint, part of `npm test`: promises nobody awaits or handles, and `any` leaking into
// typed code, are bugs the compiler does not report.
import tseslint from 'typescript-eslint';

const nodeTest = { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'before', 'after', 'beforeEach', 'afterEach', 'suite'] };

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test-artifacts/**', '.cache/**', '**/*.mjs', '**/*.js'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // node:test's describe/it return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', { allowForKnownSafeCalls: [nodeTest] }],
      // `async` without `await` is deliberate where a synchronous implementation (SQLite) fulfils an
      // asynchronous interface: a throw becomes a rejection, as callers of the interface expect.
      '@typescript-eslint/require-await': 'off',
      'prefer-const': ['error', { destructuring: 'all', ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Tests and benchmarks read untyped JSON off the wire to check it; the code under test may not.
    files: ['**/test/**/*.ts', '**/bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      // Assertion messages show arrays of steps and events as they are.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowArray: true, allowNumber: true, allowBoolean: true, allowNullish: true }],
    },
  },
);
