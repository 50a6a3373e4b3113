// Lint: typescript-eslint's recommended rules plus the house rules that a type-checker cannot see.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['node_modules/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', Buffer: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-restricted-syntax': [
        'error',
        { selector: 'TSEnumDeclaration', message: 'Use a string-literal union (erasable TypeScript only).' },
        { selector: 'TSParameterProperty', message: 'No constructor parameter properties (erasable TypeScript only).' },
      ],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // agent/ and seeder/ never import each other; shared/ imports neither; nothing in the product imports
    // bench/, test/ or harness/ (test/imports.test.ts checks the same, dynamic imports included).
    files: ['shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/agent/**', '**/seeder/**', '**/cli/**', '**/bench/**', '**/test/**', '**/harness/**'] },
      ],
    },
  },
  {
    files: ['agent/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/seeder/**', '**/cli/**', '**/bench/**', '**/test/**', '**/harness/**'] },
      ],
    },
  },
  {
    files: ['seeder/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: ['**/agent/**', '**/cli/**', '**/bench/**', '**/test/**', '**/harness/**'] },
      ],
    },
  },
  {
    files: ['cli/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/bench/**', '**/test/**', '**/harness/**'] }] },
  },
  {
    // What bench and the tests both need lives in harness/ (or shared/), never in test/.
    files: ['bench/**/*.ts', 'harness/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/test/**'] }] },
  },
)
