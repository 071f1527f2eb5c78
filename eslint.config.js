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
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-non-null-assertion': 'error'
    }
  }
)
