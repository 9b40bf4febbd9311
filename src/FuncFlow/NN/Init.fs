namespace FuncFlow.NN

open FuncFlow

/// How a weight matrix is initialised. Every scheme draws from a seeded generator, so the same seed gives
/// the same weights.
type Init =
    /// Normal values with mean 0 and the given standard deviation (MiniFlow's randn is Normal 1.0).
    | Normal of std: float
    /// He (Kaiming) normal: standard deviation sqrt(2 / fanIn), as the Grokking seed's Linear; suits ReLU.
    | He
    /// Xavier (Glorot) normal: standard deviation sqrt(2 / (fanIn + fanOut)); suits sigmoid and tanh.
    | Xavier

    /// The standard deviation this scheme uses for a weight with the given fan-in and fan-out.
    member i.Std(fanIn: int, fanOut: int) =
        match i with
        | Normal std -> std
        | He -> sqrt (2.0 / float fanIn)
        | Xavier -> sqrt (2.0 / float (fanIn + fanOut))

    /// A float64 tensor of the given shape drawn from this scheme with a seed.
    member i.Sample(seed: int, shape: int[], fanIn: int, fanOut: int) : Tensor =
        Tensor.randNormal Float64 seed shape 0.0 (i.Std(fanIn, fanOut))
