// The web page's script (bundled by scripts/build.mjs into dist/web/app.js).
