// The TypeScript reference implementation of age (npm package age-encryption, pinned in
// package.json), as a small command line for the interoperability tests.
//
//   node age.mjs keygen-pq               identity and recipient, one per line
//   node age.mjs to-recipient FILE       the recipient of every identity line of FILE
//   node age.mjs encrypt RECIPIENT...    stdin to an age file on stdout
//   node age.mjs decrypt FILE            an age file on stdin, decrypted with the identities of FILE
//
// Identity files are read as age-keygen writes them: lines starting with '#' and empty
// lines are skipped, every other line is one identity. Keys never go through argv.
// Any failure prints one line on stderr and exits 1.
import { readFileSync } from "node:fs"
import * as age from "age-encryption"

function identities(file) {
    return readFileSync(file, "utf8")
        .split("\n")
        .map((line) => line.replace(/\r$/, ""))
        .filter((line) => line !== "" && !line.startsWith("#"))
}

function stdin() {
    return new Uint8Array(readFileSync(0))
}

async function main(args) {
    switch (args[0]) {
    case "keygen-pq": {
        const identity = await age.generateHybridIdentity()
        process.stdout.write(`${identity}\n${await age.identityToRecipient(identity)}\n`)
        break
    }
    case "to-recipient":
        for (const identity of identities(args[1])) {
            process.stdout.write(`${await age.identityToRecipient(identity)}\n`)
        }
        break
    case "encrypt": {
        const e = new age.Encrypter()
        for (const r of args.slice(1)) {
            e.addRecipient(r)
        }
        process.stdout.write(await e.encrypt(stdin()))
        break
    }
    case "decrypt": {
        const d = new age.Decrypter()
        for (const identity of identities(args[1])) {
            d.addIdentity(identity)
        }
        process.stdout.write(await d.decrypt(stdin()))
        break
    }
    default:
        throw new Error(`unknown command ${args[0]}`)
    }
}

main(process.argv.slice(2)).catch((e) => {
    process.stderr.write(`age.mjs: ${e.message ?? e}\n`)
    process.exit(1)
})
