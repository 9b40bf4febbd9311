namespace FuncFlow.NN

open System
open FuncFlow

/// The recurrence a cell computes, with PyTorch's equations and gate order.
[<RequireQualifiedAccess>]
type CellKind =
    /// h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)
    | RnnTanh
    /// h' = relu(x W_ih^T + b_ih + h W_hh^T + b_hh)
    | RnnRelu
    /// Gates r, z, n: h' = n + z (h - n), n = tanh(x_n + r (h_n + b_hn)).
    | Gru
    /// Gates i, f, g, o: c' = f c + i g, h' = o tanh c'.
    | Lstm

    /// The number of gates stacked in the weights' first axis (1, 3 or 4).
    member k.Gates =
        match k with
        | RnnTanh
        | RnnRelu -> 1
        | Gru -> 3
        | Lstm -> 4

    /// PyTorch's name for the layer.
    member k.Name =
        match k with
        | RnnTanh -> "RNN(tanh)"
        | RnnRelu -> "RNN(relu)"
        | Gru -> "GRU"
        | Lstm -> "LSTM"

/// The state a recurrence carries: the hidden state h, and for an LSTM the cell state c.
type RecurrentState =
    {
        /// h: [batch; hidden] for a cell, [layers x directions; batch; hidden] for a sequence layer.
        Hidden: Expr
        /// c, an LSTM's cell state, of h's shape; None for RNN and GRU.
        Cell: Expr option
    }

/// One cell's weights in PyTorch's layout, the gates stacked along the first axis.
type CellWeights =
    {
        /// weight_ih: [gates x hidden; inputs].
        InputWeight: Expr
        /// weight_hh: [gates x hidden; hidden].
        HiddenWeight: Expr
        /// bias_ih: [gates x hidden], or None.
        InputBias: Expr option
        /// bias_hh: [gates x hidden], or None.
        HiddenBias: Expr option
    }

/// Recurrences as compositions of matmul, slices, concat, sigmoid and tanh: one step, and a whole sequence as
/// a loop that builds one step's nodes per time step (no recursion, so a sequence may be long).
[<RequireQualifiedAccess>]
module Recurrent =
    let private withBias (bias: Expr option) (y: Expr) =
        match bias with
        | Some b -> y + b
        | None -> y

    let private hiddenSize (w: CellWeights) = w.HiddenWeight.ShapeRef[1]

    let private checkWeights (op: string) (kind: CellKind) (w: CellWeights) =
        let h = if w.HiddenWeight.Rank = 2 then w.HiddenWeight.ShapeRef[1] else -1
        let rows = kind.Gates * h
        let matrixOk (e: Expr) = e.Rank = 2 && e.ShapeRef[0] = rows
        let biasOk =
            [ w.InputBias; w.HiddenBias ]
            |> List.forall (Option.forall (fun b -> b.Rank = 1 && b.ShapeRef[0] = rows))
        if h < 1 || not (matrixOk w.InputWeight && matrixOk w.HiddenWeight && biasOk) then
            invalidArg
                "weights"
                (sprintf
                    "%s: a %s cell needs weight_ih [%d x hidden; inputs], weight_hh [%d x hidden; hidden] and biases [%d x hidden], got %s, %s, %s and %s"
                    op
                    kind.Name
                    kind.Gates
                    kind.Gates
                    kind.Gates
                    (Shape.show w.InputWeight.ShapeRef)
                    (Shape.show w.HiddenWeight.ShapeRef)
                    (w.InputBias |> Option.map (fun b -> Shape.show b.ShapeRef) |> Option.defaultValue "none")
                    (w.HiddenBias |> Option.map (fun b -> Shape.show b.ShapeRef) |> Option.defaultValue "none"))

    let internal checkState (op: string) (kind: CellKind) (shape: int[]) (state: RecurrentState) =
        let fits (e: Expr) = Shape.equal e.ShapeRef shape
        let cellOk =
            match kind, state.Cell with
            | CellKind.Lstm, Some c -> fits c
            | CellKind.Lstm, None -> false
            | _, c -> c.IsNone
        if not (fits state.Hidden && cellOk) then
            invalidArg
                "state"
                (sprintf
                    "%s: a %s state needs h%s of shape %s, got h %s%s"
                    op
                    kind.Name
                    (if kind = CellKind.Lstm then " and c" else " (and no c)")
                    (Shape.show shape)
                    (Shape.show state.Hidden.ShapeRef)
                    (state.Cell |> Option.map (fun c -> " and c " + Shape.show c.ShapeRef) |> Option.defaultValue ""))

    /// The input's share of the gates, x W_ih^T + b_ih, for inputs [..; inputs]: one matrix product for all
    /// time steps at once.
    let project (w: CellWeights) (x: Expr) : Expr = withBias w.InputBias (Expr.matmul x (Expr.transpose w.InputWeight))

    /// One step from the input's projection xp [batch; gates x hidden] (see project), on weights and a state
    /// that step or sequence has checked.
    let internal stepProjected (kind: CellKind) (w: CellWeights) (xp: Expr) (state: RecurrentState) : RecurrentState =
        let h = hiddenSize w
        let gate k (e: Expr) = Expr.slice 1 (k * h) h e
        let hp = withBias w.HiddenBias (Expr.matmul state.Hidden (Expr.transpose w.HiddenWeight))
        match kind, state.Cell with
        | CellKind.RnnTanh, _ -> { Hidden = Expr.tanh (xp + hp); Cell = None }
        | CellKind.RnnRelu, _ -> { Hidden = Expr.relu (xp + hp); Cell = None }
        | CellKind.Gru, _ ->
            let r = Expr.sigmoid (gate 0 xp + gate 0 hp)
            let z = Expr.sigmoid (gate 1 xp + gate 1 hp)
            let n = Expr.tanh (gate 2 xp + r * gate 2 hp)
            // PyTorch's form of (1 - z) n + z h.
            { Hidden = n + z * (state.Hidden - n); Cell = None }
        | CellKind.Lstm, c ->
            let gates = xp + hp
            let c' = Expr.sigmoid (gate 1 gates) * c.Value + Expr.sigmoid (gate 0 gates) * Expr.tanh (gate 2 gates)
            { Hidden = Expr.sigmoid (gate 3 gates) * Expr.tanh c'; Cell = Some c' }

    /// One step of a cell on inputs x [batch; inputs] from a state of [batch; hidden]. Raises ArgumentException
    /// naming the shapes when the weights, the input or the state do not fit.
    let step (kind: CellKind) (w: CellWeights) (x: Expr) (state: RecurrentState) : RecurrentState =
        checkWeights "Recurrent.step" kind w
        let inputs = w.InputWeight.ShapeRef[1]
        if x.Rank <> 2 || x.ShapeRef[1] <> inputs then
            invalidArg "x" (sprintf "Recurrent.step: expected inputs [batch; %d], got %s" inputs (Shape.show x.ShapeRef))
        checkState "Recurrent.step" kind [| x.ShapeRef[0]; hiddenSize w |] state
        stepProjected kind w (project w x) state

    /// A cell run over a sequence x [time; batch; inputs] from a state of [batch; hidden], forwards or (reverse)
    /// from the last step to the first: the hidden states [time; batch; hidden], each at its input's position,
    /// and the state after the last step taken.
    let sequence (kind: CellKind) (w: CellWeights) (reverse: bool) (x: Expr) (initial: RecurrentState) : Expr * RecurrentState =
        checkWeights "Recurrent.sequence" kind w
        let inputs = w.InputWeight.ShapeRef[1]
        if x.Rank <> 3 || x.ShapeRef[0] < 1 || x.ShapeRef[2] <> inputs then
            invalidArg "x" (sprintf "Recurrent.sequence: expected inputs [time >= 1; batch; %d], got %s" inputs (Shape.show x.ShapeRef))
        let steps, batch, h = x.ShapeRef[0], x.ShapeRef[1], hiddenSize w
        checkState "Recurrent.sequence" kind [| batch; h |] initial
        let xp = project w x
        let outputs = Array.zeroCreate steps
        let mutable state = initial
        for s in 0 .. steps - 1 do
            let t = if reverse then steps - 1 - s else s
            state <- stepProjected kind w (Expr.reshape [| batch; kind.Gates * h |] (Expr.slice 0 t 1 xp)) state
            outputs[t] <- Expr.reshape [| 1; batch; h |] state.Hidden
        Expr.concat 0 (List.ofArray outputs), state

    /// Parameters in PyTorch's layout and initialisation, uniform in [-1/sqrt hidden, 1/sqrt hidden], each
    /// tensor from its own seed drawn from `seed`: for each suffix, weight_ih{suffix}, weight_hh{suffix} and,
    /// with a bias, bias_ih{suffix} and bias_hh{suffix}.
    let internal parameters (kind: CellKind) (hidden: int) (bias: bool) (seed: int) (suffixInputs: (string * int) list) =
        let rng = Random(seed)
        let k = 1.0 / sqrt (float hidden)
        let draw (shape: int[]) = Tensor.randUniform Float64 (rng.Next()) shape -k k
        let rows = kind.Gates * hidden
        [
            for suffix, inputs in suffixInputs do
                yield "weight_ih" + suffix, draw [| rows; inputs |]
                yield "weight_hh" + suffix, draw [| rows; hidden |]
                if bias then
                    yield "bias_ih" + suffix, draw [| rows |]
                    yield "bias_hh" + suffix, draw [| rows |]
        ]

    /// A cell's weights read from a scope by PyTorch's names with a suffix ("_l0", "_l1_reverse", or "").
    let internal weights (scope: Scope) (bias: bool) (suffix: string) =
        {
            InputWeight = scope.Param("weight_ih" + suffix)
            HiddenWeight = scope.Param("weight_hh" + suffix)
            InputBias = if bias then Some(scope.Param("bias_ih" + suffix)) else None
            HiddenBias = if bias then Some(scope.Param("bias_hh" + suffix)) else None
        }

    let internal checkSizes (name: string) (inputs: int) (hidden: int) =
        if inputs <= 0 || hidden <= 0 then
            invalidArg "inputSize" (sprintf "%s: sizes must be positive, got %d inputs and %d hidden" name inputs hidden)

/// One recurrent cell (PyTorch's RNNCell, GRUCell, LSTMCell, with their parameter names weight_ih, weight_hh,
/// bias_ih, bias_hh): a step from inputs [batch; inputs] and a state of [batch; hidden]. As a layer its output
/// is h after one step from zeros.
type RecurrentCell(kind: CellKind, inputSize: int, hiddenSize: int, bias: bool) =
    inherit Layer()
    do Recurrent.checkSizes (kind.Name + "Cell") inputSize hiddenSize

    /// The recurrence.
    member _.Kind = kind
    /// The input size.
    member _.InputSize = inputSize
    /// The hidden size.
    member _.HiddenSize = hiddenSize

    /// A zero state for a batch, in the model's element type.
    member _.ZeroState(scope: Scope, batch: int) =
        let zeros () = Expr.constant (Tensor.zeros scope.DType [| batch; hiddenSize |])
        { Hidden = zeros (); Cell = if kind = CellKind.Lstm then Some(zeros ()) else None }

    /// One step from a state (zeros when None).
    member c.Step(scope: Scope, x: Expr, state: RecurrentState option) : RecurrentState =
        let initial =
            state
            |> Option.defaultWith (fun () -> c.ZeroState(scope, (if x.Rank > 0 then x.ShapeRef[0] else 0)))
        Recurrent.step kind (Recurrent.weights scope bias "") x initial

    override _.Parameters(seed: int) = Recurrent.parameters kind hiddenSize bias seed [ "", inputSize ]
    override c.Forward(scope: Scope, x: Expr) = c.Step(scope, x, None).Hidden
    override _.Describe() = sprintf "%sCell(%d, %d)" kind.Name inputSize hiddenSize

/// PyTorch's RNNCell: tanh, or relu when `relu` is true.
[<Sealed>]
type RNNCell(inputSize: int, hiddenSize: int, relu: bool, bias: bool) =
    inherit RecurrentCell((if relu then CellKind.RnnRelu else CellKind.RnnTanh), inputSize, hiddenSize, bias)
    /// A tanh cell with biases.
    new(inputSize, hiddenSize) = RNNCell(inputSize, hiddenSize, false, true)

/// PyTorch's GRUCell (gates r, z, n).
[<Sealed>]
type GRUCell(inputSize: int, hiddenSize: int, bias: bool) =
    inherit RecurrentCell(CellKind.Gru, inputSize, hiddenSize, bias)
    /// A cell with biases.
    new(inputSize, hiddenSize) = GRUCell(inputSize, hiddenSize, true)

/// PyTorch's LSTMCell (gates i, f, g, o).
[<Sealed>]
type LSTMCell(inputSize: int, hiddenSize: int, bias: bool) =
    inherit RecurrentCell(CellKind.Lstm, inputSize, hiddenSize, bias)
    /// A cell with biases.
    new(inputSize, hiddenSize) = LSTMCell(inputSize, hiddenSize, true)

/// How a recurrent sequence layer is stacked and read (PyTorch's num_layers, bidirectional, batch_first, bias).
type RecurrentOptions =
    {
        /// Layers stacked, each reading the previous one's outputs.
        Layers: int
        /// Whether each layer also runs from the last step to the first, its outputs joined to the forward ones.
        Bidirectional: bool
        /// Inputs and outputs [batch; time; features] when true, [time; batch; features] when false. States are
        /// [layers x directions; batch; hidden] either way, as in PyTorch.
        BatchFirst: bool
        /// Whether the cells have biases.
        Bias: bool
    }

    /// One layer, one direction, [time; batch; features], with biases (PyTorch's defaults).
    static member Default = { Layers = 1; Bidirectional = false; BatchFirst = false; Bias = true }

/// A recurrent layer over whole sequences (PyTorch's nn.RNN, nn.GRU, nn.LSTM, with their parameter names:
/// weight_ih_l0 [gates x hidden; inputs], weight_hh_l0, bias_ih_l0, bias_hh_l0, and _reverse for the backward
/// direction). As a layer its output is every step's last-layer hidden state from a zero state; Run takes an
/// initial state and also gives the final one.
type RecurrentLayer(kind: CellKind, inputSize: int, hiddenSize: int, options: RecurrentOptions) =
    inherit Layer()
    do
        Recurrent.checkSizes kind.Name inputSize hiddenSize
        if options.Layers < 1 then
            invalidArg "options" (sprintf "%s: Layers must be at least 1, got %d" kind.Name options.Layers)

    let directions = if options.Bidirectional then 2 else 1
    let suffix layer direction = sprintf "_l%d%s" layer (if direction = 1 then "_reverse" else "")

    /// The recurrence.
    member _.Kind = kind
    /// The input size.
    member _.InputSize = inputSize
    /// The hidden size.
    member _.HiddenSize = hiddenSize
    /// How the layer is stacked and read.
    member _.Options = options

    /// The outputs ([batch; time; directions x hidden] or [time; batch; directions x hidden]) and the final
    /// state ([layers x directions; batch; hidden], index layer x directions + direction, as PyTorch's h_n),
    /// from an initial state of that shape (zeros when None). Raises ArgumentException naming the shapes when
    /// the input or the state does not fit.
    member _.Run(scope: Scope, input: Expr, initial: RecurrentState option) : Expr * RecurrentState =
        let name = kind.Name
        if input.Rank <> 3 || input.ShapeRef[2] <> inputSize then
            invalidArg
                "input"
                (sprintf
                    "%s: expected an input %s, got %s"
                    name
                    (if options.BatchFirst then
                         sprintf "[batch; time; %d]" inputSize
                     else
                         sprintf "[time; batch; %d]" inputSize)
                    (Shape.show input.ShapeRef))
        let x = if options.BatchFirst then Expr.permute [| 1; 0; 2 |] input else input
        let batch = x.ShapeRef[1]
        let stateShape = [| options.Layers * directions; batch; hiddenSize |]
        let zeros () = Expr.constant (Tensor.zeros scope.DType stateShape)
        let initial =
            initial
            |> Option.defaultWith (fun () -> { Hidden = zeros (); Cell = if kind = CellKind.Lstm then Some(zeros ()) else None })
        Recurrent.checkState name kind stateShape initial
        let at k (e: Expr) = Expr.reshape [| batch; hiddenSize |] (Expr.slice 0 k 1 e)
        let finals = ResizeArray<RecurrentState>()
        let mutable layerInput = x
        for layer in 0 .. options.Layers - 1 do
            let outputs =
                [
                    for d in 0 .. directions - 1 do
                        let k = layer * directions + d
                        let start = { Hidden = at k initial.Hidden; Cell = initial.Cell |> Option.map (at k) }
                        let w = Recurrent.weights scope options.Bias (suffix layer d)
                        let out, final = Recurrent.sequence kind w (d = 1) layerInput start
                        finals.Add final
                        out
                ]
            layerInput <- Expr.concat 2 outputs
        let stack (states: Expr seq) = Expr.concat 0 [ for s in states -> Expr.reshape [| 1; batch; hiddenSize |] s ]
        let output = if options.BatchFirst then Expr.permute [| 1; 0; 2 |] layerInput else layerInput
        output,
        {
            Hidden = stack (finals |> Seq.map (fun s -> s.Hidden))
            Cell = if kind = CellKind.Lstm then Some(stack (finals |> Seq.map (fun s -> s.Cell.Value))) else None
        }

    override _.Parameters(seed: int) =
        Recurrent.parameters
            kind
            hiddenSize
            options.Bias
            seed
            [
                for layer in 0 .. options.Layers - 1 do
                    for d in 0 .. directions - 1 -> suffix layer d, (if layer = 0 then inputSize else directions * hiddenSize)
            ]

    override l.Forward(scope: Scope, input: Expr) = fst (l.Run(scope, input, None))

    override _.Describe() =
        sprintf
            "%s(%d, %d, layers=%d%s%s)"
            kind.Name
            inputSize
            hiddenSize
            options.Layers
            (if options.Bidirectional then ", bidirectional" else "")
            (if options.BatchFirst then ", batch first" else "")

/// PyTorch's nn.RNN: tanh, or relu when `relu` is true.
[<Sealed>]
type RNN(inputSize: int, hiddenSize: int, relu: bool, options: RecurrentOptions) =
    inherit RecurrentLayer((if relu then CellKind.RnnRelu else CellKind.RnnTanh), inputSize, hiddenSize, options)
    /// One tanh layer with the default options.
    new(inputSize, hiddenSize) = RNN(inputSize, hiddenSize, false, RecurrentOptions.Default)

/// PyTorch's nn.GRU.
[<Sealed>]
type GRU(inputSize: int, hiddenSize: int, options: RecurrentOptions) =
    inherit RecurrentLayer(CellKind.Gru, inputSize, hiddenSize, options)
    /// One layer with the default options.
    new(inputSize, hiddenSize) = GRU(inputSize, hiddenSize, RecurrentOptions.Default)

/// PyTorch's nn.LSTM.
[<Sealed>]
type LSTM(inputSize: int, hiddenSize: int, options: RecurrentOptions) =
    inherit RecurrentLayer(CellKind.Lstm, inputSize, hiddenSize, options)
    /// One layer with the default options.
    new(inputSize, hiddenSize) = LSTM(inputSize, hiddenSize, RecurrentOptions.Default)
