// Validates one GLB with the Khronos glTF validator and prints the report JSON on stdout.
// Usage: node validate.js <file.glb>. Exit code 0 whenever a report was produced; the caller
// (crates/mesh/tests/glb_pipeline.rs via validator_support) reads `issues.numErrors`.
const fs = require('fs');
const validator = require('gltf-validator');

const path = process.argv[2];
if (!path) {
  console.error('usage: node validate.js <file.glb>');
  process.exit(2);
}
const data = new Uint8Array(fs.readFileSync(path));
validator
  .validateBytes(data, { maxIssues: 100, writeTimestamp: false })
  .then((report) => {
    process.stdout.write(JSON.stringify(report));
  })
  .catch((err) => {
    console.error('validator failed:', err);
    process.exit(1);
  });
