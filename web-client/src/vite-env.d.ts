// Vite client types (CSS imports, import.meta.env) for the TypeScript check.
/// <reference types="vite/client" />
