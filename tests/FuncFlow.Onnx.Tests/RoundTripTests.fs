/// Models exported by Onnx.exportModel and imported back by Onnx.load: the same outputs as the models themselves, at
/// a batch size other than the exported one (the exporter's shape arithmetic runs through the importer's folding).
module FuncFlow.Onnx.Tests.RoundTripTests

open System.IO
open Expecto
open FuncFlow
open FuncFlow.NN
open FuncFlow.Onnx
open FuncFlow.Tests
open FuncFlow.Onnx.Tests.Support

let private models: (string * (unit -> Layer) * int[]) list =
    [
        "lenet5", Models.lenet5, [| 2; 1; 28; 28 |]
        "conv1d", (fun () -> Sequential(Conv1d(2, 4, 3, 1, 1), ELU(), Flatten(), Linear(4 * 7, 3), Softmax())), [| 2; 2; 7 |]
        "gru", (fun () -> Sequential(GRU(3, 5, { RecurrentOptions.Default with BatchFirst = true }), Linear(5, 2))), [| 2; 6; 3 |]
        "transformer",
        (fun () -> Sequential(Linear(4, 8), TransformerBlock(8, 2, 16, true, BlockActivation.GeluTanh), LayerNorm 8)),
        [| 2; 5; 4 |]
    ]

[<Tests>]
let tests =
    moduleTests
        "RoundTripTests"
        [
            for name, layer, shape in models do
                for dtype, tol in [ Float32, 1e-5; Float64, 1e-10 ] do
                    test (sprintf "%s (%s) exported and imported gives the model's outputs at another batch size" name dtype.Name) {
                        let m = Model.Create(layer (), 7, dtype)
                        let path = Path.Combine(tempFolder (), name + ".onnx")
                        Onnx.exportModel m shape path
                        let imported = Onnx.load (Map [ "batch", 3 ]) path
                        let runShape = Array.append [| 3 |] shape[1..]
                        let x = Tensor.randNormal dtype 5 runShape 0.0 1.0
                        let actual = (Onnx.evaluate imported (Map [ "input", x ]))["output"]
                        let expected = m.Predict x
                        Expect.equal actual.Shape expected.Shape "output shape"
                        assertClose name tol (expected.ToArray()) (actual.ToArray())
                        // The exporter's constants are initializers too, so they import as parameters as well.
                        for KeyValue(key, value) in Seq.append m.Parameters m.Buffers do
                            assertClose key 0.0 (value.ToArray()) (imported.Parameters[key].ToArray())
                    }
        ]
