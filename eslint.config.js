import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  // vendor/: the stand-in package for @actions/core's HTTP client, shaped like the API it stands in for.
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'vendor/'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    // Config files that their tools load as CommonJS (.dependency-cruiser.cjs).
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } }
  },
  {
    // The step's log is printed in one place, which keeps each phase's lines in its group, annotations outside them,
    // and no workflow command where a relayed build log has stopped them.
    files: ['src/**/*.ts'],
    ignores: ['src/base/step-log.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        ...[
          'info',
          'debug',
          'notice',
          'warning',
          'error',
          'setFailed',
          'startGroup',
          'endGroup',
          'group',
          'summary'
        ].map(property => ({ object: 'core', property, message: 'Print through src/base/step-log.ts.' }))
      ]
    }
  },
  {
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error'
    }
  }
)
