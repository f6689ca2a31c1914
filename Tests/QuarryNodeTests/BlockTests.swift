import Testing
import QuarryConsensus
import QuarryCore
import QuarryCrypto
import QuarryLedger
@testable import QuarryNode

func sampleHeader(height: UInt64 = 7) -> BlockHeader {
    BlockHeader(chainID: "quarry-test", height: height, timeMilliseconds: 1_700_000_000_123,
                previousBlockHash: SM3.hash([1]), lastCommitHash: SM3.hash([2]), transactionsRoot: SM3.hash([3]),
                resultsRoot: SM3.hash([4]), stateRoot: SM3.hash([5]), validatorsHash: SM3.hash([6]), proposer: 2)
}

@Suite struct BlockFormatTests {
    @Test func blockRoundTripsAndHashesTheHeaderOnly() throws {
        let cert = CommitCertificate(height: 6, round: 1, blockID: SM3.hash([9]),
                                     signatures: [CommitSignature(validator: 0, timestamp: 5, signature: [UInt8](repeating: 1, count: 64))])
        let block = Block(header: sampleHeader(), lastCommit: cert,
                          systemTransactions: [.carryEmptyBatches(from: 0, to: 3, carriedGrains: 150_000_000_000)],
                          transactions: [[1, 2, 3], []])
        let bytes = block.canonicalBytes
        let back = try Block(canonicalBytes: bytes)
        #expect(back == block)
        #expect(back.hash == block.header.hash)
        var other = block
        other.transactions.append([4])
        #expect(other.hash == block.hash, "the id is the header's hash; the body is bound through its roots")
        var h2 = sampleHeader()
        h2.stateRoot = SM3.hash([55])
        #expect(h2.hash != sampleHeader().hash)
    }

    @Test func decoderRejectsUnknownVersionTrailingBytesAndTruncation() throws {
        var header = sampleHeader()
        header.version = 2
        #expect(throws: CanonicalError.self) { _ = try BlockHeader(canonicalBytes: header.canonicalBytes) }
        let block = Block(header: sampleHeader(), lastCommit: nil, systemTransactions: [], transactions: [[1]])
        #expect(throws: CanonicalError.self) { _ = try Block(canonicalBytes: block.canonicalBytes + [0]) }
        let bytes = block.canonicalBytes
        for n in stride(from: 0, to: bytes.count, by: 7) {
            #expect(throws: (any Error).self) { _ = try Block(canonicalBytes: Array(bytes[..<n])) }
        }
    }

    @Test func merkleRootsAndProofs() {
        #expect(MerkleTree.root(leaves: []) == SM3.hash([UInt8]()))
        for n in 1...9 {
            let leaves = (0..<n).map { SM3.hash([UInt8($0)]) }
            let root = MerkleTree.root(leaves: leaves)
            for i in 0..<n {
                let proof = MerkleTree.proof(leaves: leaves, index: i)
                #expect(MerkleTree.verify(leaf: leaves[i], proof: proof, root: root))
                #expect(!MerkleTree.verify(leaf: SM3.hash([0xee]), proof: proof, root: root))
                if n > 1 { #expect(!MerkleTree.verify(leaf: leaves[(i + 1) % n], proof: proof, root: root)) }
            }
        }
        // A leaf and an inner node never collide: domain bytes differ.
        let a = SM3.hash([1]), b = SM3.hash([2])
        #expect(MerkleTree.root(leaves: [a, b]) != MerkleTree.root(leaves: [SM3.hash([0x01] + a.bytes + b.bytes)]))
    }
}
