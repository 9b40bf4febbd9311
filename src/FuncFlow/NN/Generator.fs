namespace FuncFlow.NN

open System
open System.Globalization

/// A seeded random generator whose whole state can be read and restored (xoshiro256**, Blackman and Vigna),
/// so a training checkpoint can resume the exact stream of dropout masks and sampled batches. It is a
/// System.Random, so noise samplers and batch samplers take it as they take any generator.
[<Sealed>]
type Generator(seed: int) =
    inherit Random()

    /// SplitMix64 spreads a 32-bit seed over the 256-bit state, as the xoshiro authors advise.
    static let splitMix (x: uint64) =
        let z = x + 0x9E3779B97F4A7C15UL
        let z = (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
        let z = (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
        z ^^^ (z >>> 31)

    static let rotl (x: uint64) (k: int) = (x <<< k) ||| (x >>> (64 - k))

    let state =
        let start = uint64 (int64 seed)
        Array.init 4 (fun i -> splitMix (start + uint64 i * 0x9E3779B97F4A7C15UL))

    /// The next 64 random bits.
    member _.NextUInt64() : uint64 =
        let result = (rotl (state[1] * 5UL) 7) * 9UL
        let t = state[1] <<< 17
        state[2] <- state[2] ^^^ state[0]
        state[3] <- state[3] ^^^ state[1]
        state[1] <- state[1] ^^^ state[2]
        state[0] <- state[0] ^^^ state[3]
        state[2] <- state[2] ^^^ t
        state[3] <- rotl state[3] 45
        result

    /// The state as text (four hexadecimal words), for a checkpoint's metadata.
    member _.State = String.Join(" ", state |> Array.map (fun w -> w.ToString("x16")))

    /// Puts the generator back in a state read from State, so it goes on with the stream it had then.
    /// Raises ArgumentException for text that is not four hexadecimal words, or the all-zero state (from
    /// which xoshiro never leaves).
    member _.Restore(text: string) =
        let words = if isNull text then [||] else text.Split(' ', StringSplitOptions.RemoveEmptyEntries)
        let parsed =
            words
            |> Array.choose (fun w ->
                match UInt64.TryParse(w, NumberStyles.HexNumber, CultureInfo.InvariantCulture) with
                | true, v -> Some v
                | _ -> None)
        if words.Length <> 4 || parsed.Length <> 4 || Array.forall ((=) 0UL) parsed then
            invalidArg "text" (sprintf "Generator.Restore: expected four hexadecimal words, not all zero, got '%s'" text)
        parsed.CopyTo(state, 0)

    // Every Random method draws from the 64-bit stream, so none reaches Random's own (unsaved) state.

    /// A double in [0, 1) from the top 53 bits.
    override g.Sample() = float (g.NextUInt64() >>> 11) * (1.0 / 9007199254740992.0)
    override g.NextDouble() = g.Sample()
    override g.NextSingle() = float32 (g.NextUInt64() >>> 40) * (1.0f / 16777216.0f)

    override g.NextInt64(minValue: int64, maxValue: int64) =
        if minValue > maxValue then
            invalidArg "minValue" (sprintf "Generator.NextInt64: minValue %d is above maxValue %d" minValue maxValue)
        let range = uint64 (maxValue - minValue)
        if range = 0UL then
            minValue
        else
            // Rejection keeps every value equally likely: draws in the last partial copy of the range are redrawn.
            let limit = UInt64.MaxValue - UInt64.MaxValue % range
            let mutable x = g.NextUInt64()
            while x >= limit do
                x <- g.NextUInt64()
            minValue + int64 (x % range)

    override g.NextInt64(maxValue: int64) = g.NextInt64(0L, maxValue)
    override g.NextInt64() = g.NextInt64(0L, Int64.MaxValue)
    override g.Next(minValue: int, maxValue: int) = int (g.NextInt64(int64 minValue, int64 maxValue))
    override g.Next(maxValue: int) = g.Next(0, maxValue)
    override g.Next() = g.Next(0, Int32.MaxValue)

    override g.NextBytes(buffer: Span<byte>) =
        for i in 0 .. buffer.Length - 1 do
            buffer[i] <- byte (g.NextUInt64() >>> 56)

    override g.NextBytes(buffer: byte[]) = g.NextBytes(Span buffer)
